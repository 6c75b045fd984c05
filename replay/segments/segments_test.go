package segments_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/replay"
	"github.com/sinkbus/sinkbus/replay/segments"
	"github.com/sinkbus/sinkbus/replay/storagetest"
)

// openSegs opens a Segments storage closed at the end of the test; Dir
// defaults to a fresh temporary directory.
func openSegs(t testing.TB, cfg segments.Config) *segments.Storage {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	s, err := segments.Open(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// Small segments with no tail cache: every read is from the files.
func TestSegments_offsets_dense_across_segment_rolls_and_reopen(t *testing.T) {
	dir := t.TempDir()
	clk := storagetest.NewStepClock(time.Second)
	s := openSegs(t, segments.Config{Dir: dir, SegmentBytes: 300, TailCacheBytes: -1})
	want := storagetest.AppendN(t, s, "orders", 1, 60, clk.Now)
	for i, r := range want {
		require.Equal(t, uint64(i+1), r.Offset)
	}
	files, err := filepath.Glob(filepath.Join(dir, "orders", "*.seg"))
	require.NoError(t, err)
	assert.Greater(t, len(files), 5, "small SegmentBytes rolls segments")
	assert.Equal(t, filepath.Join(dir, "orders", "00000000000000000001.seg"), files[0])
	storagetest.AssertSameRecords(t, want, storagetest.ReadAll(t, s, "orders"))
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "Close is idempotent")
	_, err = s.Read("orders", 1, 1)
	require.ErrorIs(t, err, segments.ErrClosed)
	require.ErrorIs(t, s.Append("orders", []*replay.Record{storagetest.Record(0)}, clk.Now), segments.ErrClosed)

	s = openSegs(t, segments.Config{Dir: dir, SegmentBytes: 300, TailCacheBytes: -1})
	storagetest.AssertSameRecords(t, want, storagetest.ReadAll(t, s, "orders"))
	first, next := s.Bounds("orders")
	assert.Equal(t, uint64(1), first)
	assert.Equal(t, uint64(61), next)

	// Random reads land on the right record, through the sparse index
	// (no tail cache: from the files).
	for _, off := range []uint64{1, 2, 17, 33, 59, 60} {
		recs, err := s.Read("orders", off, 1)
		require.NoError(t, err)
		require.Len(t, recs, 1)
		assert.Equal(t, off, recs[0].Offset)
	}
}

// sealWhileLooking returns a storage of segments that hold two records, with
// record 1 of topic "t" written at t0, and whose first look to the end of a
// segment (by Read, Seek or Trim) is followed by two appends: record 2 at
// t0+1s, which fills the first segment, and record 3 at t0+2s, which starts
// the second. No tail cache: reads are from the files.
func sealWhileLooking(t *testing.T) (s *segments.Storage, t0 time.Time, looked *bool) {
	rec := func(i int) *replay.Record {
		return &replay.Record{UUID: fmt.Sprintf("r-%d", i), Payload: []byte(`{}`)}
	}
	at := func(d time.Duration) func() time.Time { return func() time.Time { return t0.Add(d) } }
	t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	frame := int64(len(segments.EncodeFrame(rec(1))))
	dir := t.TempDir()
	s = openSegs(t, segments.Config{Dir: dir, SegmentBytes: frame + 1, TailCacheBytes: -1})
	require.NoError(t, s.Append("t", []*replay.Record{rec(1)}, at(0)))
	looked = new(bool)
	segments.AfterSegmentRead(s, func() {
		if *looked {
			return
		}
		*looked = true
		require.NoError(t, s.Append("t", []*replay.Record{rec(2)}, at(time.Second)))
		require.NoError(t, s.Append("t", []*replay.Record{rec(3)}, at(2*time.Second)))
		files, err := filepath.Glob(filepath.Join(dir, "t", "*.seg"))
		require.NoError(t, err)
		require.Len(t, files, 2, "record 3 starts a segment of its own")
	})
	return s, t0, looked
}

// A look at a segment that reaches its end while records are still being
// added to it (here: appended between the look and the move to the next
// segment, which the same appends start) comes back for them: an
// acknowledged record is neither skipped by Read, nor by Seek, nor trimmed
// though newer than the cut.
func TestSegments_looks_that_meet_a_seal_keep_the_sealed_segments_last_records(t *testing.T) {
	t.Run("read", func(t *testing.T) {
		s, _, looked := sealWhileLooking(t)
		recs, err := s.Read("t", 1, 10)
		require.NoError(t, err)
		require.True(t, *looked, "the read met the appends")
		var offsets []uint64
		for _, r := range recs {
			offsets = append(offsets, r.Offset)
		}
		assert.Equal(t, []uint64{1, 2, 3}, offsets)
	})
	t.Run("seek", func(t *testing.T) {
		s, t0, looked := sealWhileLooking(t)
		off, err := s.Seek("t", t0.Add(time.Second))
		require.NoError(t, err)
		require.True(t, *looked, "the seek met the appends")
		assert.Equal(t, uint64(2), off, "record 2 is the first at t0+1s")
	})
	t.Run("trim", func(t *testing.T) {
		s, t0, looked := sealWhileLooking(t)
		n, err := s.Trim(t0.Add(time.Second))
		require.NoError(t, err)
		require.True(t, *looked, "the trim met the appends")
		assert.Equal(t, 1, n, "only record 1 is older than the cut")
		first, next := s.Bounds("t")
		assert.Equal(t, uint64(2), first)
		assert.Equal(t, uint64(4), next)
	})
}

// Each append waits for the fsync covering it; appenders waiting at once
// share it, so the fsyncs are a fraction of the appends. Eight appenders,
// each waiting for its own record, come back together after every fsync:
// the leader gathers them (the one completing the group wakes it).
func TestSegments_group_commit_shares_fsyncs_between_concurrent_appenders(t *testing.T) {
	for _, c := range []struct {
		writers, perWriter int
		share              int // at most one fsync per share appends
	}{
		{writers: 32, perWriter: 40, share: 4},
		{writers: 8, perWriter: 200, share: 2},
	} {
		t.Run(fmt.Sprintf("%d_appenders", c.writers), func(t *testing.T) {
			s := openSegs(t, segments.Config{})
			appends := c.writers * c.perWriter
			storagetest.AppendConcurrently(t, s, "t", c.writers, c.perWriter, nil)

			require.Len(t, storagetest.ReadAll(t, s, "t"), appends)
			syncs := segments.DataSyncs(s, "t")
			assert.NotZero(t, syncs, "every append returned durable")
			assert.Positive(t, segments.SyncTook(s, "t"), "the fsyncs were timed: the gathering bounds follow them")
			assert.Less(t, syncs, uint64(appends/c.share), "fsyncs for %d appends", appends)
			t.Logf("%d appends, %d fsyncs: %.1f records per fsync", appends, syncs, float64(appends)/float64(syncs))
		})
	}
}

// What Trim does to the files (the contract, storagetest, checks what
// readers see): segments holding only trimmed records go, also for a log
// just reopened; the segment being written stays until it is sealed.
func TestSegments_trim_deletes_the_segments_below_the_floor(t *testing.T) {
	for _, reopen := range []bool{false, true} {
		t.Run(fmt.Sprintf("reopened_%v", reopen), func(t *testing.T) {
			dir := t.TempDir()
			cfg := segments.Config{Dir: dir, SegmentBytes: 250}
			clk := storagetest.NewStepClock(time.Second)
			s := openSegs(t, cfg)
			want := storagetest.AppendN(t, s, "orders", 1, 40, clk.Now)
			if reopen {
				require.NoError(t, s.Close())
				s = openSegs(t, cfg)
			}
			segsBefore, _ := filepath.Glob(filepath.Join(dir, "orders", "*.seg"))

			n, err := s.Trim(want[20].Time) // records 1..20 are older
			require.NoError(t, err)
			require.Equal(t, 20, n)
			segsAfter, _ := filepath.Glob(filepath.Join(dir, "orders", "*.seg"))
			assert.Less(t, len(segsAfter), len(segsBefore), "segments holding only trimmed records are deleted")
			for _, f := range segsAfter[1:] {
				b, _ := strconv.ParseUint(strings.TrimSuffix(filepath.Base(f), ".seg"), 10, 64)
				assert.Greater(t, b, uint64(21), "the first segment left holds record 21")
			}

			n, err = s.Trim(clk.Now().Add(time.Hour))
			require.NoError(t, err)
			require.Equal(t, 20, n)
			segsLeft, _ := filepath.Glob(filepath.Join(dir, "orders", "*.seg"))
			assert.Len(t, segsLeft, 1, "the segment being written stays")
		})
	}
}

// With no segment left at all (every file deleted), a reopened topic still
// continues its offsets after the trimmed ones.
func TestSegments_offsets_continue_after_a_topic_trimmed_empty(t *testing.T) {
	dir := t.TempDir()
	cfg := segments.Config{Dir: dir, SegmentBytes: 1, MaxSegmentAge: time.Second}
	clk := storagetest.NewStepClock(time.Minute)
	s := openSegs(t, cfg)
	storagetest.AppendN(t, s, "orders", 1, 5, clk.Now)
	n, err := s.Trim(clk.Now())
	require.NoError(t, err)
	assert.Equal(t, 5, n)
	require.NoError(t, s.Close())
	segs, _ := filepath.Glob(filepath.Join(dir, "orders", "*.seg"))
	for _, f := range segs {
		require.NoError(t, os.Remove(f)) // as if the last one had been sealed and trimmed too
	}

	s = openSegs(t, cfg)
	first, next := s.Bounds("orders")
	assert.Equal(t, uint64(6), first)
	assert.Equal(t, uint64(6), next)
	got := storagetest.AppendN(t, s, "orders", 6, 1, clk.Now)
	assert.Equal(t, uint64(6), got[0].Offset)
}

// The cursors' file, beside the contract (storagetest): plain JSON,
// replaced whole, nothing left behind.
func TestSegments_cursors_file_is_plain_json_replaced_whole(t *testing.T) {
	dir := t.TempDir()
	s := openSegs(t, segments.Config{Dir: dir})
	a := replay.CursorKey{Topic: "orders", Group: "hook-1"}
	b := replay.CursorKey{Topic: "orders", Group: "hook-2"}
	require.NoError(t, s.SaveCursors(map[replay.CursorKey]replay.Cursor{a: {Next: 6, Acked: []replay.Range{{From: 8, To: 10}}}, b: {Next: 7}}))
	require.NoError(t, s.DeleteCursor(b))

	data, err := os.ReadFile(filepath.Join(dir, "cursors.json"))
	require.NoError(t, err)
	var entries []map[string]any
	require.NoError(t, json.Unmarshal(data, &entries), "cursors.json is plain JSON")
	assert.Len(t, entries, 1)
	leftovers, _ := filepath.Glob(filepath.Join(dir, "*tmp*"))
	assert.Empty(t, leftovers)
}

func TestSegments_offsets_continue_after_acknowledged_records_that_were_lost(t *testing.T) {
	dir := t.TempDir()
	clk := storagetest.NewStepClock(time.Second)
	s := openSegs(t, segments.Config{Dir: dir, Sync: segments.SyncNone})
	storagetest.AppendN(t, s, "orders", 1, 3, clk.Now)
	// As after a power cut with SyncNone: a consumer acknowledged up to 9
	// but the log only kept 3 records.
	require.NoError(t, s.SaveCursors(map[replay.CursorKey]replay.Cursor{
		{Topic: "orders", Group: "g"}: {Next: 7, Acked: []replay.Range{{From: 9, To: 10}}},
		{Topic: "gone", Group: "g"}:   {Next: 4},
	}))
	require.NoError(t, s.Close())

	logger := watermill.NewCaptureLogger()
	s = openSegs(t, segments.Config{Dir: dir, Logger: logger})
	first, next := s.Bounds("orders")
	assert.Equal(t, uint64(1), first)
	assert.Equal(t, uint64(10), next)
	more := storagetest.AppendN(t, s, "orders", 10, 1, clk.Now)
	assert.Equal(t, uint64(10), more[0].Offset, "a new record never takes an acknowledged offset")
	var offs []uint64
	for _, r := range storagetest.ReadAll(t, s, "orders") {
		offs = append(offs, r.Offset)
	}
	assert.Equal(t, []uint64{1, 2, 3, 10}, offs)
	_, next = s.Bounds("gone")
	assert.Equal(t, uint64(4), next)
	assert.NotEmpty(t, logger.Captured()[watermill.ErrorLogLevel])

	require.NoError(t, s.Close())
	s = openSegs(t, segments.Config{Dir: dir})
	_, next = s.Bounds("orders")
	assert.Equal(t, uint64(11), next)
}

func TestSegments_any_topic_name_is_a_safe_directory(t *testing.T) {
	dir := t.TempDir()
	topics := []string{
		"order.fulfilled", "Order.Fulfilled", "", ".", "..", "../escape", "a/b\\c", "cursors.json",
		".hidden", "spaces and %41 percent", "ünïcødé", "nul\x00byte", "tilde~name", "!bang",
		strings.Repeat("long.", 80), strings.Repeat("L", 300),
	}
	s := openSegs(t, segments.Config{Dir: dir})
	clk := storagetest.NewStepClock(time.Second)
	for i, topic := range topics {
		require.NoError(t, s.Append(topic, []*replay.Record{storagetest.Record(i)}, clk.Now), "topic %q", topic)
	}
	require.NoError(t, s.SaveCursors(map[replay.CursorKey]replay.Cursor{{Topic: "cursors.json", Group: "g"}: {Next: 2}}))
	require.NoError(t, s.Close())

	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	dirs := 0
	for _, e := range entries {
		if e.IsDir() {
			dirs++
			assert.LessOrEqual(t, len(e.Name()), 255)
		}
	}
	assert.Equal(t, len(topics), dirs, "one directory per topic, all inside Dir")
	_, err = os.Stat(filepath.Join(filepath.Dir(dir), "escape"))
	assert.True(t, os.IsNotExist(err))

	s = openSegs(t, segments.Config{Dir: dir})
	sorted := append([]string(nil), topics...)
	sort.Strings(sorted)
	assert.Equal(t, sorted, s.Topics())
	for i, topic := range topics {
		recs, err := s.Read(topic, 1, 10)
		require.NoError(t, err)
		require.Len(t, recs, 1, "topic %q", topic)
		assert.Equal(t, fmt.Sprintf("uuid-%d", i), recs[0].UUID)
	}
}

func TestSegments_escaped_names_round_trip(t *testing.T) {
	cases := []struct{ topic, dir string }{
		{"order.fulfilled", "order.fulfilled"},
		{"Order", "!order"},
		{".x", "%2ex"},
		{"a/b", "a%2fb"},
		{"cursors.json", "cursors%2ejson"},
	}
	for _, c := range cases {
		assert.Equal(t, c.dir, segments.EscapeTopic(c.topic))
		back, ok := segments.UnescapeTopic(c.dir)
		assert.True(t, ok)
		assert.Equal(t, c.topic, back)
	}
	for _, bad := range []string{"%2E", "%zz", "!A", "x%2", "a~b", "", "cursors.json"} {
		_, ok := segments.UnescapeTopic(bad)
		assert.False(t, ok, bad)
	}
}

func TestSegments_sync_policies_keep_records(t *testing.T) {
	for _, p := range []segments.SyncPolicy{segments.SyncGroupCommit, segments.SyncInterval, segments.SyncNone} {
		t.Run(p.String(), func(t *testing.T) {
			dir := t.TempDir()
			cfg := segments.Config{Dir: dir, Sync: p, SyncEvery: time.Millisecond, SegmentBytes: 1 << 10}
			s := openSegs(t, cfg)
			clk := storagetest.NewStepClock(time.Second)
			want := storagetest.AppendN(t, s, "t", 1, 30, clk.Now)
			storagetest.AssertSameRecords(t, want, storagetest.ReadAll(t, s, "t"))
			require.NoError(t, s.Close())
			storagetest.AssertSameRecords(t, want, storagetest.ReadAll(t, openSegs(t, cfg), "t"))
		})
	}
}

func TestSegmentConfig_Validate_names_every_problem(t *testing.T) {
	err := segments.Config{SegmentBytes: -1, Sync: 7, SyncEvery: -time.Second}.Validate()
	require.Error(t, err)
	for _, field := range []string{"dir", "segment_bytes", "sync", "sync_every"} {
		assert.Contains(t, err.Error(), field+":")
	}
	_, err = segments.Open(segments.Config{})
	require.ErrorContains(t, err, "dir: is required")
	require.NoError(t, segments.Config{Dir: "x"}.Validate())
}

func TestSyncPolicy_text_round_trip(t *testing.T) {
	for _, p := range []segments.SyncPolicy{segments.SyncGroupCommit, segments.SyncInterval, segments.SyncNone} {
		b, err := p.MarshalText()
		require.NoError(t, err)
		var back segments.SyncPolicy
		require.NoError(t, back.UnmarshalText(b))
		assert.Equal(t, p, back)
	}
	var p segments.SyncPolicy
	assert.Error(t, p.UnmarshalText([]byte("always")))
	_, err := segments.SyncPolicy(9).MarshalText()
	assert.Error(t, err)
}

func TestSegments_rejects_too_large_record(t *testing.T) {
	s := openSegs(t, segments.Config{})
	big := &replay.Record{Payload: make([]byte, 1<<28)}
	require.ErrorIs(t, s.Append("t", []*replay.Record{big}, time.Now), segments.ErrRecordTooLarge)
	_, next := s.Bounds("t")
	assert.Equal(t, uint64(1), next)
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
	s := openSegs(t, segments.Config{Dir: dir})
	got, err := s.Cursors()
	require.NoError(t, err)
	assert.Equal(t, map[replay.CursorKey]replay.Cursor{
		{Topic: "events", Group: "old"}:     {Next: 42},
		{Topic: "events", Group: "damaged"}: {Next: 10},
		{Topic: "events", Group: "new"}:     {Next: 10, Acked: []replay.Range{{From: 12, To: 14}}},
	}, got)
}

// syncLog records what OnSync was told.
type syncLog struct {
	mu    sync.Mutex
	calls []segments.Synced
}

func (l *syncLog) add(s segments.Synced) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, s)
}

// records is how many records the fsyncs so far made durable.
func (l *syncLog) records() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, c := range l.calls {
		n += c.Records
	}
	return n
}

// Every record is counted once, by the fsync that made it durable: under
// group commit before its Append returns, under interval within SyncEvery,
// under none when its segment is sealed or closed.
func TestSegments_OnSync_counts_each_record_once_when_it_is_durable(t *testing.T) {
	for _, p := range []segments.SyncPolicy{segments.SyncGroupCommit, segments.SyncInterval, segments.SyncNone} {
		t.Run(p.String(), func(t *testing.T) {
			var log syncLog
			cfg := segments.Config{Sync: p, SyncEvery: time.Millisecond, SegmentBytes: 1 << 10, OnSync: log.add}
			s := openSegs(t, cfg)
			clk := storagetest.NewStepClock(time.Second)
			const n = 30
			for i := range n {
				require.NoError(t, s.Append("t", []*replay.Record{storagetest.Record(i)}, clk.Now))
				if p == segments.SyncGroupCommit {
					require.Equal(t, i+1, log.records(), "durable when Append returns")
				}
			}
			switch p {
			case segments.SyncInterval:
				require.Eventually(t, func() bool { return log.records() == n }, 5*time.Second, time.Millisecond)
			case segments.SyncNone:
				assert.Less(t, log.records(), n, "the segment being written is not synced before it is sealed")
			}
			require.NoError(t, s.Close())

			assert.Equal(t, n, log.records())
			for _, c := range log.calls {
				assert.Equal(t, "t", c.Topic)
				assert.Positive(t, c.Records)
				assert.Positive(t, c.Took)
			}
			if p == segments.SyncGroupCommit {
				assert.EqualValues(t, segments.DataSyncs(s, "t"), len(log.calls), "one call per fsync of records")
			}
		})
	}
}
