package replay_test

import (
	"context"
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

// Retention must hold with the storage's defaults: a journal far smaller
// than a segment still loses what is past the window, to its readers at
// once and on disk once the segment is sealed.
func TestJournal_retention_holds_with_default_segments(t *testing.T) {
	for _, name := range []string{"memory", "segments"} {
		t.Run(name, func(t *testing.T) {
			clk := clock.NewFake(time.Time{})
			dir := t.TempDir()
			var st replay.Storage = replay.NewMemory()
			if name == "segments" {
				seg, err := segments.Open(segments.Config{Dir: dir}) // the defaults: 64 MiB segments
				require.NoError(t, err)
				st = seg // closed by the journal
			}
			j, err := replay.Open(replay.Config{Storage: st, Clock: clk, Retention: 24 * time.Hour, CompactEvery: -1})
			require.NoError(t, err)
			defer j.Close()
			require.NoError(t, j.SetCursor("t", "behind", 1))
			publishN(t, j, "t", 0, 5, nil) // 1-5
			clk.Advance(48 * time.Hour)
			publishN(t, j, "t", 5, 2, nil) // 6-7

			n, err := j.Compact()
			require.NoError(t, err)
			assert.Equal(t, 5, n)
			first, next := st.Bounds("t")
			assert.Equal(t, uint64(6), first)
			assert.Equal(t, uint64(8), next)
			if name == "segments" {
				assert.Equal(t, []uint64{6}, segmentBases(t, dir, "t"),
					"the aged segment was sealed at the next append, then deleted")
			}

			var lost uint64
			msgs, err := j.Consumer(replay.ConsumerConfig{Group: "behind",
				OnRetentionLoss: func(n uint64) { lost += n }}).Subscribe(context.Background(), "t")
			require.NoError(t, err)
			ctx := deadline(t)
			for _, want := range []int{5, 6} {
				m := receive(t, ctx, msgs)
				assert.Equal(t, itoa(want), m.Metadata.Get("n"))
				m.Ack()
			}
			assert.Equal(t, uint64(5), lost)

			// Nothing published since: the rest expires all the same.
			clk.Advance(48 * time.Hour)
			n, err = j.Compact()
			require.NoError(t, err)
			assert.Equal(t, 2, n)
			first, next = st.Bounds("t")
			assert.Equal(t, uint64(8), first)
			assert.Equal(t, uint64(8), next)
			var scanned int
			require.NoError(t, j.Scan(ctx, "t", time.Time{}, time.Time{}, func(replay.Record) bool { scanned++; return true }))
			assert.Zero(t, scanned, "Scan sees no expired record")

			// The next record seals the segment of the hidden ones; the next
			// compaction deletes it, though nothing more has expired.
			publishN(t, j, "t", 7, 1, nil)
			n, err = j.Compact()
			require.NoError(t, err)
			assert.Zero(t, n)
			if name == "segments" {
				assert.Equal(t, []uint64{8}, segmentBases(t, dir, "t"))
			}
		})
	}
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
