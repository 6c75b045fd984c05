package replay_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/replay"
)

func TestCursor_Done_and_End(t *testing.T) {
	c := replay.Cursor{Next: 5, Acked: []replay.Range{{From: 7, To: 9}, {From: 12, To: 13}}}
	require.NoError(t, c.Validate())
	var done []uint64
	for o := uint64(1); o < 15; o++ {
		if c.Done(o) {
			done = append(done, o)
		}
	}
	assert.Equal(t, []uint64{1, 2, 3, 4, 7, 8, 12}, done)
	assert.Equal(t, uint64(13), c.End())
	assert.Equal(t, uint64(3), c.AckedAbove())
	assert.Equal(t, uint64(5), replay.Cursor{Next: 5}.End())
}

func TestCursor_Validate_refuses_ranges_that_break_the_rules(t *testing.T) {
	for name, acked := range map[string][]replay.Range{
		"empty":          {{From: 7, To: 7}},
		"at_next":        {{From: 5, To: 7}},
		"below_next":     {{From: 3, To: 7}},
		"overlapping":    {{From: 7, To: 9}, {From: 8, To: 10}},
		"adjacent":       {{From: 7, To: 9}, {From: 9, To: 10}},
		"out_of_order":   {{From: 12, To: 13}, {From: 7, To: 9}},
		"reversed_range": {{From: 9, To: 7}},
	} {
		assert.Error(t, replay.Cursor{Next: 5, Acked: acked}.Validate(), name)
	}
}
