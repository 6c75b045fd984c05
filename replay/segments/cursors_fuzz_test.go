package segments_test

import (
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/replay"
	"github.com/sinkbus/sinkbus/replay/segments"
)

// FuzzStorage_cursors_reopen: every cursor the journal saves reads back
// the same after a restart, whatever its group name and acknowledged
// ranges, so no cursors file the journal writes can keep it from opening;
// and a cursors file of any content makes Open fail or succeed,
// never panic.
func FuzzStorage_cursors_reopen(f *testing.F) {
	f.Add("events", "erp-export", uint64(7), []byte{3, 2, 1, 5}, []byte(`[{"topic":"events","group":"g","offset":3}]`))
	f.Add("events", "", uint64(0), []byte{}, []byte(`[{"topic":"t","group":"g","offset":1,"acked":[[5,3]]}]`))
	f.Add("t\x00\"x", "g\n\u2028", ^uint64(0)-300, []byte{255, 255, 1}, []byte(`{`))
	f.Fuzz(func(t *testing.T, topic, group string, next uint64, gaps []byte, file []byte) {
		if !utf8.ValidString(topic) || !utf8.ValidString(group) {
			t.Skip("topics and groups are UTF-8: integration ids and topic names")
		}
		// Acknowledged ranges above next from gaps: alternately a gap and a
		// length, each at least 1, within uint64.
		c := replay.Cursor{Next: next}
		at := next
		for i := 0; i+1 < len(gaps) && len(c.Acked) < 32; i += 2 {
			from, to := at+1+uint64(gaps[i]), at+1+uint64(gaps[i])+1+uint64(gaps[i+1])
			if from <= at || to <= from {
				break // would wrap
			}
			c.Acked = append(c.Acked, replay.Range{From: from, To: to})
			at = to
		}
		require.NoError(t, c.Validate())

		dir := t.TempDir()
		s, err := segments.Open(segments.Config{Dir: dir})
		require.NoError(t, err)
		key := replay.CursorKey{Topic: topic, Group: group}
		require.NoError(t, s.SaveCursors(map[replay.CursorKey]replay.Cursor{key: c}))
		require.NoError(t, s.Close())
		s, err = segments.Open(segments.Config{Dir: dir})
		require.NoError(t, err, "a cursors file the journal wrote keeps it from opening")
		got, err := s.Cursors()
		require.NoError(t, err)
		require.NoError(t, s.Close())
		assert.Equal(t, map[replay.CursorKey]replay.Cursor{key: c}, got)

		other := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(other, "cursors.json"), file, 0o600))
		if s, err := segments.Open(segments.Config{Dir: other}); err == nil {
			cursors, err := s.Cursors()
			require.NoError(t, err)
			for _, c := range cursors {
				assert.NoError(t, c.Validate(), "a damaged cursor is never handed out")
			}
			require.NoError(t, s.Close())
		}
	})
}
