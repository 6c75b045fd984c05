package replay_test

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/internal/clock"
	"github.com/sinkbus/sinkbus/replay"
	"github.com/sinkbus/sinkbus/replay/segments"
)

// segmentBases returns the first offsets of the segment files of a topic
// named in lower-case letters, which is its own directory's name.
func segmentBases(t *testing.T, dir, topic string) []uint64 {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, topic, "*.seg"))
	require.NoError(t, err)
	var out []uint64
	for _, f := range files {
		b, err := strconv.ParseUint(strings.TrimSuffix(filepath.Base(f), ".seg"), 10, 64)
		require.NoError(t, err)
		out = append(out, b)
	}
	return out
}

// Retention must hold with the segment log's defaults: a journal far
// smaller than a segment loses what is past the window on disk too, once
// the segment is sealed (what its readers see is the contract's part,
// replay/storagetest).
func TestJournal_retention_deletes_segments_with_the_defaults(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	dir := t.TempDir()
	st, err := segments.Open(segments.Config{Dir: dir}) // the defaults: 64 MiB segments
	require.NoError(t, err)
	j, err := replay.Open(replay.Config{Storage: st, Clock: clk, Retention: 24 * time.Hour, CompactEvery: -1})
	require.NoError(t, err)
	defer j.Close()                // closes st
	publishN(t, j, "t", 0, 5, nil) // 1-5
	clk.Advance(48 * time.Hour)
	publishN(t, j, "t", 5, 2, nil) // 6-7

	n, err := j.Compact()
	require.NoError(t, err)
	assert.Equal(t, 5, n)
	assert.Equal(t, []uint64{6}, segmentBases(t, dir, "t"),
		"the aged segment was sealed at the next append, then deleted")

	// Nothing published since: the rest expires all the same; the next
	// record seals the segment of the hidden ones, and the next compaction
	// deletes it, though nothing more has expired.
	clk.Advance(48 * time.Hour)
	n, err = j.Compact()
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	publishN(t, j, "t", 7, 1, nil)
	n, err = j.Compact()
	require.NoError(t, err)
	assert.Zero(t, n)
	assert.Equal(t, []uint64{8}, segmentBases(t, dir, "t"))
}

// Records that expired while the journal was closed are gone when it opens,
// before any consumer reads.
func TestJournal_Open_compacts_what_expired_while_closed(t *testing.T) {
	dir := t.TempDir()
	clk := clock.NewFake(time.Time{})
	open := func() (*replay.Journal, *segments.Storage) {
		st, err := segments.Open(segments.Config{Dir: dir})
		require.NoError(t, err)
		j, err := replay.Open(replay.Config{Storage: st, Clock: clk, Retention: 24 * time.Hour})
		require.NoError(t, err)
		return j, st
	}
	j, _ := open()
	publishN(t, j, "t", 0, 3, nil)
	require.NoError(t, j.Close())

	clk.Advance(48 * time.Hour)
	j, st := open()
	defer j.Close()
	first, next := st.Bounds("t")
	assert.Equal(t, uint64(4), first)
	assert.Equal(t, uint64(4), next)
	publishN(t, j, "t", 3, 1, nil)
	recs, err := st.Read("t", 1, 10)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	assert.Equal(t, uint64(4), recs[0].Offset)
}
