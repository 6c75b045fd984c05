package replay

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// ackSet against a plain set of offsets, on random acknowledgements and
// skips: the same offsets, kept as disjoint, non-adjacent ranges, and a
// watermark that moves over every acknowledged prefix.
func TestAckSet_matches_a_set_of_offsets(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 50 {
		var s ackSet
		model := map[uint64]bool{}
		committed := uint64(1 + rng.IntN(5))
		for range 300 {
			from := committed + uint64(rng.IntN(60))
			to := from + 1
			if rng.IntN(10) == 0 { // a skip: many offsets at once
				to += uint64(rng.IntN(20))
			}
			for o := from; o < to; o++ {
				model[o] = true
			}
			s.add(from, to)
			if end, ok := s.popAt(committed); ok {
				committed = end
			}
			for model[committed] { // the model's watermark
				delete(model, committed)
				committed++
			}
			for o := range model {
				if o < committed {
					delete(model, o)
				}
			}
			c := s.cursor(committed)
			require.NoError(t, c.Validate(), "round %d", round)
			require.Equal(t, uint64(len(model)), s.n, "round %d", round)
			require.Equal(t, uint64(len(model)), c.AckedAbove(), "round %d", round)
			for o := committed; o < committed+100; o++ {
				require.Equal(t, model[o], s.contains(o), "round %d offset %d", round, o)
			}
			require.Equal(t, uint64(len(model)), s.count(0, committed+1000))
		}
	}
}
