package replay

import "sort"

// ackSet is the acknowledged offsets above a watermark, as Cursor.Acked
// keeps them: sorted, disjoint, non-adjacent ranges. A consumer holds one
// per reader. Every operation costs a binary search and at most one move of
// the ranges after the change, never a step per offset: a retention or
// corruption skip of millions of offsets is one range.
type ackSet struct {
	ranges []Range
	n      uint64 // offsets held
}

// add marks [from, to) as acknowledged, merging with the ranges it touches.
func (s *ackSet) add(from, to uint64) {
	if from >= to {
		return
	}
	// i: the first range that ends at or after from (touches or follows it);
	// j: the first range that starts after to (follows without touching).
	i := sort.Search(len(s.ranges), func(k int) bool { return s.ranges[k].To >= from })
	j := i + sort.Search(len(s.ranges)-i, func(k int) bool { return s.ranges[i+k].From > to })
	merged := Range{From: from, To: to}
	for _, r := range s.ranges[i:j] {
		merged.From = min(merged.From, r.From)
		merged.To = max(merged.To, r.To)
		s.n -= r.Len()
	}
	s.n += merged.Len()
	switch {
	case i == j: // nothing touched: insert
		s.ranges = append(s.ranges, Range{})
		copy(s.ranges[i+1:], s.ranges[i:])
		s.ranges[i] = merged
	default:
		s.ranges[i] = merged
		s.ranges = append(s.ranges[:i+1], s.ranges[j:]...)
	}
}

// popAt removes the first range when it starts at offset and returns its
// end: how far a watermark at offset moves.
func (s *ackSet) popAt(offset uint64) (end uint64, ok bool) {
	if len(s.ranges) == 0 || s.ranges[0].From != offset {
		return 0, false
	}
	r := s.ranges[0]
	s.ranges = s.ranges[1:]
	s.n -= r.Len()
	return r.To, true
}

// skip returns the first offset at or after offset that is not acknowledged.
func (s *ackSet) skip(offset uint64) uint64 {
	i := sort.Search(len(s.ranges), func(k int) bool { return s.ranges[k].To > offset })
	if i < len(s.ranges) && s.ranges[i].From <= offset {
		return s.ranges[i].To
	}
	return offset
}

// nextAbove returns where the first range starting after offset begins.
func (s *ackSet) nextAbove(offset uint64) (uint64, bool) {
	i := sort.Search(len(s.ranges), func(k int) bool { return s.ranges[k].From > offset })
	if i == len(s.ranges) {
		return 0, false
	}
	return s.ranges[i].From, true
}

// contains reports whether offset is acknowledged.
func (s *ackSet) contains(offset uint64) bool { return s.skip(offset) != offset }

// count returns how many offsets of [from, to) are acknowledged.
func (s *ackSet) count(from, to uint64) uint64 { return countIn(s.ranges, from, to) }

// cursor returns the cursor of a watermark at next with s above it, sharing
// nothing with s.
func (s *ackSet) cursor(next uint64) Cursor {
	c := Cursor{Next: next}
	if len(s.ranges) > 0 {
		c.Acked = append([]Range(nil), s.ranges...)
	}
	return c
}

// countIn returns how many offsets of [from, to) the sorted ranges hold.
func countIn(ranges []Range, from, to uint64) uint64 {
	var n uint64
	i := sort.Search(len(ranges), func(k int) bool { return ranges[k].To > from })
	for _, r := range ranges[i:] {
		if r.From >= to {
			break
		}
		n += min(r.To, to) - max(r.From, from)
	}
	return n
}
