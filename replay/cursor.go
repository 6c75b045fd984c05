package replay

import "fmt"

// Cursor is a consumer group's delivery state in one topic: exactly which
// records the group has acknowledged. Acknowledgements arrive out of order
// (deliveries run in parallel, one event may retry for hours while later
// ones succeed), so a single offset cannot say it: Next is the watermark,
// and Acked the acknowledged offsets above it. A restart skips both, so it
// delivers again only what was not acknowledged.
type Cursor struct {
	// Next is the first offset not yet acknowledged: every offset below it
	// is.
	Next uint64
	// Acked holds the acknowledged offsets above Next: sorted, disjoint,
	// non-adjacent ranges, each above Next + 1 (Next itself is never
	// acknowledged, or Next would move).
	Acked []Range
}

// Range is the offsets [From, To).
type Range struct {
	From, To uint64
}

// Len is how many offsets r holds.
func (r Range) Len() uint64 { return r.To - r.From }

// Done reports whether offset is acknowledged.
func (c Cursor) Done(offset uint64) bool {
	if offset < c.Next {
		return true
	}
	s := ackSet{ranges: c.Acked}
	return s.contains(offset)
}

// AckedAbove is how many offsets above Next are acknowledged.
func (c Cursor) AckedAbove() uint64 { return rangesLen(c.Acked) }

// Undelivered is how many offsets of [first, head) are not acknowledged:
// a group's lag when first is the oldest retained record and head the next
// to be appended.
func (c Cursor) Undelivered(first, head uint64) uint64 {
	from := max(c.Next, first)
	if from >= head {
		return 0
	}
	return head - from - countIn(c.Acked, from, head)
}

// Validate reports whether c keeps the rules of its fields. A storage
// checks what it loads with it, so that no cursor it wrote, however
// damaged, can make a consumer skip or loop.
func (c Cursor) Validate() error {
	prev := c.Next
	for i, r := range c.Acked {
		if r.From >= r.To {
			return fmt.Errorf("sinkbus: cursor range %d [%d, %d) is empty", i, r.From, r.To)
		}
		if r.From <= prev {
			return fmt.Errorf("sinkbus: cursor range %d [%d, %d) does not start above %d", i, r.From, r.To, prev)
		}
		prev = r.To
	}
	return nil
}

// Clone returns a copy of c that shares nothing with it.
func (c Cursor) Clone() Cursor {
	if c.Acked != nil {
		c.Acked = append([]Range(nil), c.Acked...)
	}
	return c
}

// End is the first offset past every acknowledged one.
func (c Cursor) End() uint64 {
	if n := len(c.Acked); n > 0 {
		return c.Acked[n-1].To
	}
	return c.Next
}
