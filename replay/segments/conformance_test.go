package segments_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/replay"
	"github.com/sinkbus/sinkbus/replay/segments"
	"github.com/sinkbus/sinkbus/replay/storagetest"
)

// The whole contract on the defaults, and on segments of a few hundred
// bytes (reads cross files) with and without the tail cache (without it,
// every read is from the files, across segments sealed while it reads).
func TestSegments_conformance(t *testing.T) {
	for name, cfg := range map[string]segments.Config{
		"defaults":                {},
		"small_segments":          {SegmentBytes: 300},
		"small_segments_no_cache": {SegmentBytes: 300, TailCacheBytes: -1},
	} {
		t.Run(name, func(t *testing.T) { storagetest.Run(t, factory(cfg)) })
	}
}

// Subscribers racing publishers, over segment sizes from a few records to
// many, and tail caches from none to one that holds a few records (readers
// that fall behind it read the files while segments are sealed) to the
// default; the two that TestSegments_conformance runs are left out.
func TestSegments_live_reads_over_segment_and_cache_sizes(t *testing.T) {
	for _, segmentBytes := range []int64{300, 4 << 10, 64 << 10} {
		for _, cacheBytes := range []int64{-1, 1 << 10, 0} {
			if segmentBytes == 300 && cacheBytes != 1<<10 {
				continue
			}
			cfg := segments.Config{SegmentBytes: segmentBytes, TailCacheBytes: cacheBytes}
			t.Run(fmt.Sprintf("segment_%d_cache_%d", segmentBytes, cacheBytes), func(t *testing.T) {
				storagetest.RunLiveReads(t, factory(cfg))
			})
		}
	}
}

// factory opens storages of cfg, each in a directory of its own.
func factory(cfg segments.Config) storagetest.Factory {
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
	return storagetest.Factory{
		New: func(t *testing.T) replay.Storage { return open(t, t.TempDir()) },
		Reopen: func(t *testing.T, st replay.Storage) replay.Storage {
			require.NoError(t, st.Close())
			mu.Lock()
			dir := dirs[st]
			mu.Unlock()
			return open(t, dir)
		},
	}
}
