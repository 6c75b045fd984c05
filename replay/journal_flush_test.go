package replay_test

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/replay"
)

// A save of cursors under way must not be overtaken: neither by a newer save
// (the saved cursor would go back when the older one lands) nor by
// DeleteCursor (the save would bring the deleted cursor back).
func TestJournal_Flush_saves_in_order_with_concurrent_writers(t *testing.T) {
	key := replay.CursorKey{Topic: "t", Group: "g"}
	for _, tc := range []struct {
		name   string
		second func(j *replay.Journal) error // runs while the first save is held
		want   func(t *testing.T, saved map[replay.CursorKey]replay.Cursor)
	}{
		{
			name:   "newer_save",
			second: func(j *replay.Journal) error { return j.SetCursor("t", "g", 9) },
			want: func(t *testing.T, saved map[replay.CursorKey]replay.Cursor) {
				assert.Equal(t, uint64(9), saved[key].Next, "the newest cursor is saved last")
			},
		},
		{
			name:   "delete",
			second: func(j *replay.Journal) error { return j.DeleteCursor("t", "g") },
			want: func(t *testing.T, saved map[replay.CursorKey]replay.Cursor) {
				assert.NotContains(t, saved, key, "a deleted cursor stays deleted")
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := replay.NewMemory()
			entered, release := make(chan struct{}), make(chan struct{})
			var once sync.Once
			st := &hookStorage{Storage: mem, save: func(map[replay.CursorKey]replay.Cursor) {
				held := false
				once.Do(func() { held = true })
				if held {
					close(entered)
					<-release
				}
			}}
			j, err := replay.Open(replay.Config{Storage: st, CompactEvery: -1, CursorFlushEvery: time.Hour})
			require.NoError(t, err)
			defer j.Close()

			first := make(chan error, 1)
			go func() { first <- j.SetCursor("t", "g", 5) }()
			<-entered // the first save holds its snapshot {g: 5}
			second := make(chan error, 1)
			go func() { second <- tc.second(j) }()
			// A correct journal makes the second writer wait for the first;
			// a broken one lets it finish now. Either way the first save is
			// released, and only the outcome is checked.
			select {
			case err := <-second:
				second <- err
			case <-time.After(100 * time.Millisecond):
			}
			close(release)
			require.NoError(t, <-first)
			require.NoError(t, <-second)

			saved, err := mem.Cursors()
			require.NoError(t, err)
			tc.want(t, saved)
			// What the journal holds agrees with what it saved.
			cur, ok := j.Cursor("t", "g")
			if v, saved := saved[key]; saved {
				assert.True(t, ok)
				assert.Equal(t, v, cur)
			} else {
				assert.False(t, ok)
			}
		})
	}
}
