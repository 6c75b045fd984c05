package replay

// doneRanges returns the offsets c says are acknowledged, as sorted,
// disjoint ranges.
func (c Cursor) doneRanges() []Range {
	out := make([]Range, 0, 1+len(c.Acked))
	if c.Next > 0 {
		out = append(out, Range{0, c.Next})
	}
	return append(out, c.Acked...)
}

// intersectRanges returns the offsets both a and b hold; each is sorted and
// disjoint, and so is the result.
func intersectRanges(a, b []Range) []Range {
	var out []Range
	for i, j := 0, 0; i < len(a) && j < len(b); {
		from, to := max(a[i].From, b[j].From), min(a[i].To, b[j].To)
		if from < to {
			out = append(out, Range{from, to})
		}
		if a[i].To < b[j].To {
			i++
		} else {
			j++
		}
	}
	return out
}

// rangesLen is how many offsets rs hold.
func rangesLen(rs []Range) uint64 {
	var n uint64
	for _, r := range rs {
		n += r.Len()
	}
	return n
}
