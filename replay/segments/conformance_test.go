package segments_test

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/replay"
	"github.com/sinkbus/sinkbus/replay/segments"
	"github.com/sinkbus/sinkbus/replay/storagetest"
)

// The contract on the defaults, and on segments of a few hundred bytes:
// reads cross files.
func TestSegments_conformance(t *testing.T) {
	for name, cfg := range map[string]segments.Config{
		"defaults":       {},
		"small_segments": {SegmentBytes: 300},
	} {
		t.Run(name, func(t *testing.T) {
			var mu sync.Mutex
			dirs := make(map[replay.Storage]string)
			open := func(t *testing.T, dir string) replay.Storage {
				c := cfg
				c.Dir = dir
				s, err := segments.Open(c)
				require.NoError(t, err)
				mu.Lock()
				dirs[s] = dir
				mu.Unlock()
				return s
			}
			storagetest.Run(t, storagetest.Factory{
				New: func(t *testing.T) replay.Storage { return open(t, t.TempDir()) },
				Reopen: func(t *testing.T, st replay.Storage) replay.Storage {
					require.NoError(t, st.Close())
					mu.Lock()
					dir := dirs[st]
					mu.Unlock()
					return open(t, dir)
				},
			})
		})
	}
}
