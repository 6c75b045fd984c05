package replay_test

import (
	"os"
	"path/filepath"
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

// A cursors.json written before acknowledged ranges existed loads as it
// was; a damaged range list falls back to the watermark, which can only
// deliver again, never skip.
func TestSegments_cursors_file_of_older_versions_and_damaged_ranges(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "cursors.json"), []byte(`[
  {"topic": "events", "group": "old", "offset": 42},
  {"topic": "events", "group": "damaged", "offset": 10, "acked": [[12, 11], [20, 30]]},
  {"topic": "events", "group": "new", "offset": 10, "acked": [[12, 14]]}
]`), 0o644))
	s := openSegs(t, replay.SegmentConfig{Dir: dir})
	got, err := s.Cursors()
	require.NoError(t, err)
	assert.Equal(t, map[replay.CursorKey]replay.Cursor{
		{Topic: "events", Group: "old"}:     {Next: 42},
		{Topic: "events", Group: "damaged"}: {Next: 10},
		{Topic: "events", Group: "new"}:     {Next: 10, Acked: []replay.Range{{From: 12, To: 14}}},
	}, got)
}
