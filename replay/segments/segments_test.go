package segments_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/replay"
	"github.com/sinkbus/sinkbus/replay/segments"
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

// stepClock returns start, start+step, start+2*step... one per call.
type stepClock struct {
	mu   sync.Mutex
	now  time.Time
	step time.Duration
}

func newStepClock(step time.Duration) *stepClock {
	return &stepClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), step: step}
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.now
	c.now = c.now.Add(c.step)
	return t
}

func segRecord(i int) *replay.Record {
	return &replay.Record{
		UUID:     fmt.Sprintf("uuid-%d", i),
		Metadata: map[string]string{"i": strconv.Itoa(i), "name": "order.fulfilled"},
		Payload:  []byte(fmt.Sprintf(`{"n":%d,"pad":%q}`, i, strings.Repeat("x", i%50))),
	}
}

func appendN(t testing.TB, s replay.Storage, topic string, from, n int, now func() time.Time) []replay.Record {
	t.Helper()
	out := make([]replay.Record, 0, n)
	for i := from; i < from+n; i++ {
		r := segRecord(i)
		require.NoError(t, s.Append(topic, []*replay.Record{r}, now))
		out = append(out, *r)
	}
	return out
}

func readAll(t testing.TB, s replay.Storage, topic string) []replay.Record {
	t.Helper()
	first, next := s.Bounds(topic)
	var out []replay.Record
	for from := first; from < next; {
		recs, err := s.Read(topic, from, 7)
		require.NoError(t, err)
		if len(recs) == 0 {
			break
		}
		out = append(out, recs...)
		from = recs[len(recs)-1].Offset + 1
	}
	return out
}

func assertSameRecords(t *testing.T, want, got []replay.Record) {
	t.Helper()
	require.Len(t, got, len(want))
	for i := range want {
		assert.Equal(t, want[i].Offset, got[i].Offset, "record %d", i)
		assert.True(t, want[i].Time.Equal(got[i].Time), "record %d time %v != %v", i, want[i].Time, got[i].Time)
		assert.Equal(t, want[i].UUID, got[i].UUID, "record %d", i)
		if len(want[i].Metadata) == 0 {
			assert.Empty(t, got[i].Metadata)
		} else {
			assert.Equal(t, want[i].Metadata, got[i].Metadata, "record %d", i)
		}
		assert.Equal(t, string(want[i].Payload), string(got[i].Payload), "record %d", i)
	}
}

func TestSegments_round_trip_with_metadata_and_empty_payloads(t *testing.T) {
	for _, cache := range []int64{0, -1} {
		t.Run(fmt.Sprintf("tail_cache_%d", cache), func(t *testing.T) {
			s := openSegs(t, segments.Config{TailCacheBytes: cache})
			clk := newStepClock(time.Millisecond)
			recs := []*replay.Record{
				{UUID: "a", Metadata: map[string]string{"k": "v", "empty": "", "ünï": "çødé"}, Payload: []byte(`{"x":1}`)},
				{UUID: "b"},
				{UUID: "", Metadata: map[string]string{}, Payload: []byte{}},
				{UUID: "d", Payload: []byte(strings.Repeat("p", 200_000))},
			}
			require.NoError(t, s.Append("orders", recs, clk.Now))
			for i, r := range recs {
				assert.Equal(t, uint64(i+1), r.Offset)
			}

			got, err := s.Read("orders", 1, 10)
			require.NoError(t, err)
			want := make([]replay.Record, len(recs))
			for i, r := range recs {
				want[i] = *r
			}
			assertSameRecords(t, want, got)
			assert.NotNil(t, got[1].Metadata, "empty metadata comes back as a usable map")

			// Copies: changing what Read returned changes nothing stored.
			got[0].Payload[0] = 'X'
			got[0].Metadata["k"] = "changed"
			again, err := s.Read("orders", 1, 1)
			require.NoError(t, err)
			assert.Equal(t, `{"x":1}`, string(again[0].Payload))
			assert.Equal(t, "v", again[0].Metadata["k"])

			first, next := s.Bounds("orders")
			assert.Equal(t, uint64(1), first)
			assert.Equal(t, uint64(5), next)
			third, err := s.Read("orders", 3, 1)
			require.NoError(t, err)
			assert.Equal(t, uint64(3), third[0].Offset)
			none, err := s.Read("orders", 5, 10)
			require.NoError(t, err)
			assert.Empty(t, none)
			none, err = s.Read("unknown", 1, 10)
			require.NoError(t, err)
			assert.Empty(t, none)
		})
	}
}

func TestSegments_offsets_dense_across_segment_rolls_and_reopen(t *testing.T) {
	dir := t.TempDir()
	clk := newStepClock(time.Second)
	s := openSegs(t, segments.Config{Dir: dir, SegmentBytes: 300, TailCacheBytes: -1})
	want := appendN(t, s, "orders", 1, 60, clk.Now)
	for i, r := range want {
		require.Equal(t, uint64(i+1), r.Offset)
	}
	files, err := filepath.Glob(filepath.Join(dir, "orders", "*.seg"))
	require.NoError(t, err)
	assert.Greater(t, len(files), 5, "small SegmentBytes rolls segments")
	assert.Equal(t, filepath.Join(dir, "orders", "00000000000000000001.seg"), files[0])
	assertSameRecords(t, want, readAll(t, s, "orders"))
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "Close is idempotent")
	_, err = s.Read("orders", 1, 1)
	require.ErrorIs(t, err, segments.ErrClosed)
	require.ErrorIs(t, s.Append("orders", []*replay.Record{segRecord(0)}, clk.Now), segments.ErrClosed)

	s = openSegs(t, segments.Config{Dir: dir, SegmentBytes: 300, TailCacheBytes: -1})
	assertSameRecords(t, want, readAll(t, s, "orders"))
	first, next := s.Bounds("orders")
	assert.Equal(t, uint64(1), first)
	assert.Equal(t, uint64(61), next)

	// Appends continue after the last offset, and time never goes back.
	early := func() time.Time { return want[0].Time.Add(-time.Hour) }
	more := appendN(t, s, "orders", 61, 3, early)
	assert.Equal(t, uint64(61), more[0].Offset)
	assert.True(t, more[0].Time.Equal(want[len(want)-1].Time), "time clamped to the last record's after reopen")
	assert.Equal(t, []string{"orders"}, s.Topics())

	// Random reads land on the right record, through the sparse index.
	for _, off := range []uint64{1, 2, 17, 33, 59, 60, 61, 63} {
		recs, err := s.Read("orders", off, 1)
		require.NoError(t, err)
		require.Len(t, recs, 1)
		assert.Equal(t, off, recs[0].Offset)
	}
}

func TestSegments_concurrent_appenders_keep_offsets_dense_and_times_ordered(t *testing.T) {
	s := openSegs(t, segments.Config{SegmentBytes: 8 << 10, TailCacheBytes: 16 << 10})
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var tick atomic.Int64
	// A clock that sometimes goes backwards: Append must clamp.
	jittery := func() time.Time {
		n := tick.Add(1)
		return base.Add(time.Duration(n*1000+rand.Int64N(5000)-2500) * time.Microsecond)
	}
	const writers, perWriter = 16, 60
	var wg sync.WaitGroup
	done := make(chan struct{})
	var readers sync.WaitGroup
	for range 2 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			next := uint64(1)
			for {
				recs, err := s.Read("t", next, 50)
				if !assert.NoError(t, err) {
					return
				}
				for _, r := range recs {
					if !assert.Equal(t, next, r.Offset) {
						return
					}
					next++
				}
				if len(recs) == 0 {
					select {
					case <-done:
						if _, n := s.Bounds("t"); next >= n {
							return
						}
					default:
						runtime.Gosched()
					}
				}
			}
		}()
	}
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				batch := []*replay.Record{{UUID: fmt.Sprintf("%d-%d-a", w, i), Payload: []byte("a")}}
				if i%3 == 0 {
					batch = append(batch, &replay.Record{UUID: fmt.Sprintf("%d-%d-b", w, i), Payload: []byte("b")})
				}
				if !assert.NoError(t, s.Append("t", batch, jittery)) {
					return
				}
				if len(batch) == 2 {
					assert.Equal(t, batch[0].Offset+1, batch[1].Offset, "one call's records are contiguous")
				}
			}
		}()
	}
	wg.Wait()
	close(done)
	readers.Wait()

	all := readAll(t, s, "t")
	require.Len(t, all, writers*(perWriter+perWriter/3))
	seen := make(map[string]bool)
	for i, r := range all {
		require.Equal(t, uint64(i+1), r.Offset)
		if i > 0 {
			require.False(t, r.Time.Before(all[i-1].Time), "time went back at offset %d", r.Offset)
		}
		require.False(t, seen[r.UUID], "duplicate %s", r.UUID)
		seen[r.UUID] = true
	}
}

func TestSegments_group_commit_shares_fsyncs_between_concurrent_appenders(t *testing.T) {
	s := openSegs(t, segments.Config{})
	const writers, perWriter = 32, 40
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				rec := &replay.Record{UUID: fmt.Sprintf("%d-%d", w, i), Payload: []byte(`{}`)}
				if !assert.NoError(t, s.Append("t", []*replay.Record{rec}, time.Now)) {
					return
				}
			}
		}()
	}
	wg.Wait()

	require.Len(t, readAll(t, s, "t"), writers*perWriter)
	syncs := segments.DataSyncs(s, "t")
	assert.NotZero(t, syncs, "every append returned durable")
	// Each append waits for the fsync covering it; 32 of them waiting at
	// once share it, so the fsyncs are a fraction of the appends.
	assert.Less(t, syncs, uint64(writers*perWriter/4), "fsyncs for %d appends", writers*perWriter)
	t.Logf("%d appends, %d fsyncs: %.1f records per fsync", writers*perWriter, syncs, float64(writers*perWriter)/float64(syncs))
}

func TestSegments_seek_by_time_across_segments(t *testing.T) {
	dir := t.TempDir()
	clk := newStepClock(time.Second)
	s := openSegs(t, segments.Config{Dir: dir, SegmentBytes: 250, TailCacheBytes: -1})
	want := appendN(t, s, "orders", 1, 40, clk.Now)
	// Two records with the same time (one Append call).
	pair := []*replay.Record{segRecord(41), segRecord(42)}
	require.NoError(t, s.Append("orders", pair, clk.Now))
	t0 := want[0].Time

	check := func(t *testing.T, s *segments.Storage) {
		cases := []struct {
			name string
			at   time.Time
			want uint64
		}{
			{"before everything", t0.Add(-time.Hour), 1},
			{"first record", t0, 1},
			{"exact record time", t0.Add(17 * time.Second), 18},
			{"between records", t0.Add(17*time.Second + time.Millisecond), 19},
			{"last single record", t0.Add(39 * time.Second), 40},
			{"first of equal times", pair[0].Time, 41},
			{"after everything", pair[0].Time.Add(time.Nanosecond), 43},
		}
		for _, c := range cases {
			got, err := s.Seek("orders", c.at)
			require.NoError(t, err)
			assert.Equal(t, c.want, got, c.name)
		}
		got, err := s.Seek("unknown", t0)
		require.NoError(t, err)
		assert.Equal(t, uint64(1), got)
	}
	t.Run("open", func(t *testing.T) { check(t, s) })
	require.NoError(t, s.Close())
	t.Run("reopened", func(t *testing.T) {
		check(t, openSegs(t, segments.Config{Dir: dir, SegmentBytes: 250, TailCacheBytes: -1}))
	})
}

func TestSegments_trim_removes_old_segments_and_moves_bounds(t *testing.T) {
	for _, reopen := range []bool{false, true} {
		t.Run(fmt.Sprintf("reopened_%v", reopen), func(t *testing.T) {
			dir := t.TempDir()
			cfg := segments.Config{Dir: dir, SegmentBytes: 250}
			clk := newStepClock(time.Second)
			s := openSegs(t, cfg)
			want := appendN(t, s, "orders", 1, 40, clk.Now)
			appendN(t, s, "other", 1, 3, clk.Now)
			if reopen {
				require.NoError(t, s.Close())
				s = openSegs(t, cfg)
			}
			segsBefore, _ := filepath.Glob(filepath.Join(dir, "orders", "*.seg"))

			n, err := s.Trim(want[0].Time)
			require.NoError(t, err)
			assert.Zero(t, n, "nothing is older than the first record")

			cut := want[20].Time // records 1..20 are older
			n, err = s.Trim(cut)
			require.NoError(t, err)
			assert.Equal(t, 20, n)
			first, next := s.Bounds("orders")
			assert.Equal(t, uint64(41), next)
			assert.Equal(t, uint64(21), first, "every record older than the cut is gone, none newer")
			assertSameRecords(t, want[20:], readAll(t, s, "orders"))
			fromOne, err := s.Read("orders", 1, 1)
			require.NoError(t, err)
			assert.Equal(t, first, fromOne[0].Offset, "trimmed records are skipped silently")
			off, err := s.Seek("orders", want[0].Time)
			require.NoError(t, err)
			assert.Equal(t, first, off, "Seek finds no trimmed record")
			segsAfter, _ := filepath.Glob(filepath.Join(dir, "orders", "*.seg"))
			assert.Less(t, len(segsAfter), len(segsBefore), "segments holding only trimmed records are deleted")
			for _, f := range segsAfter[1:] {
				b, _ := strconv.ParseUint(strings.TrimSuffix(filepath.Base(f), ".seg"), 10, 64)
				assert.Greater(t, b, uint64(21), "the first segment left holds record 21")
			}

			// Everything is old: every record is hidden, the segment being
			// written stays on disk until it is sealed.
			n, err = s.Trim(clk.Now().Add(time.Hour))
			require.NoError(t, err)
			assert.Equal(t, 20+3, n, "the rest of orders and the three of other")
			segsLeft, _ := filepath.Glob(filepath.Join(dir, "orders", "*.seg"))
			assert.Len(t, segsLeft, 1)
			first, next = s.Bounds("orders")
			assert.Equal(t, uint64(41), first)
			assert.Equal(t, uint64(41), next)
			assert.Empty(t, readAll(t, s, "orders"))
			more := appendN(t, s, "orders", 41, 1, clk.Now)
			assert.Equal(t, uint64(41), more[0].Offset, "offsets go on")

			// The trim survives a reopen.
			require.NoError(t, s.Close())
			s = openSegs(t, cfg)
			f2, n2 := s.Bounds("orders")
			assert.Equal(t, uint64(41), f2)
			assert.Equal(t, uint64(42), n2)
			assertSameRecords(t, more, readAll(t, s, "orders"))
			otherFirst, otherNext := s.Bounds("other")
			assert.Equal(t, uint64(4), otherFirst, "other topics are trimmed by the same cut")
			assert.Equal(t, uint64(4), otherNext)
		})
	}
}

// With no segment left at all (every file deleted), a reopened topic still
// continues its offsets after the trimmed ones.
func TestSegments_offsets_continue_after_a_topic_trimmed_empty(t *testing.T) {
	dir := t.TempDir()
	cfg := segments.Config{Dir: dir, SegmentBytes: 1, MaxSegmentAge: time.Second}
	clk := newStepClock(time.Minute)
	s := openSegs(t, cfg)
	appendN(t, s, "orders", 1, 5, clk.Now)
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
	got := appendN(t, s, "orders", 6, 1, clk.Now)
	assert.Equal(t, uint64(6), got[0].Offset)
}

func TestSegments_cursors_save_load_delete(t *testing.T) {
	dir := t.TempDir()
	s := openSegs(t, segments.Config{Dir: dir})
	got, err := s.Cursors()
	require.NoError(t, err)
	assert.Empty(t, got)

	a := replay.CursorKey{Topic: "orders", Group: "hook-1"}
	b := replay.CursorKey{Topic: "orders", Group: "hook-2"}
	c := replay.CursorKey{Topic: "carts", Group: "hook-1"}
	acked := []replay.Range{{From: 8, To: 10}, {From: 12, To: 13}}
	require.NoError(t, s.SaveCursors(map[replay.CursorKey]replay.Cursor{{Topic: "orders", Group: "hook-1"}: {Next: 5}, b: {Next: 7}}))
	require.NoError(t, s.SaveCursors(map[replay.CursorKey]replay.Cursor{a: {Next: 6, Acked: acked}, c: {Next: 1}}))
	acked[0].From = 9 // the storage kept a copy
	want := map[replay.CursorKey]replay.Cursor{
		a: {Next: 6, Acked: []replay.Range{{From: 8, To: 10}, {From: 12, To: 13}}},
		b: {Next: 7}, c: {Next: 1},
	}
	got, err = s.Cursors()
	require.NoError(t, err)
	assert.Equal(t, want, got)
	got[a] = replay.Cursor{Next: 100}
	again, _ := s.Cursors()
	assert.Equal(t, want[a], again[a], "Cursors returns a copy")

	require.NoError(t, s.DeleteCursor(b))
	require.NoError(t, s.DeleteCursor(replay.CursorKey{Topic: "none", Group: "none"}))

	data, err := os.ReadFile(filepath.Join(dir, "cursors.json"))
	require.NoError(t, err)
	var entries []map[string]any
	require.NoError(t, json.Unmarshal(data, &entries), "cursors.json is plain JSON")
	assert.Len(t, entries, 2)
	leftovers, _ := filepath.Glob(filepath.Join(dir, "*tmp*"))
	assert.Empty(t, leftovers)

	require.NoError(t, s.Close())
	s = openSegs(t, segments.Config{Dir: dir})
	got, err = s.Cursors()
	require.NoError(t, err)
	assert.Equal(t, map[replay.CursorKey]replay.Cursor{a: want[a], c: want[c]}, got)
}

func TestSegments_offsets_continue_after_acknowledged_records_that_were_lost(t *testing.T) {
	dir := t.TempDir()
	clk := newStepClock(time.Second)
	s := openSegs(t, segments.Config{Dir: dir, Sync: segments.SyncNone})
	appendN(t, s, "orders", 1, 3, clk.Now)
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
	more := appendN(t, s, "orders", 10, 1, clk.Now)
	assert.Equal(t, uint64(10), more[0].Offset, "a new record never takes an acknowledged offset")
	var offs []uint64
	for _, r := range readAll(t, s, "orders") {
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
	clk := newStepClock(time.Second)
	for i, topic := range topics {
		require.NoError(t, s.Append(topic, []*replay.Record{segRecord(i)}, clk.Now), "topic %q", topic)
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
			clk := newStepClock(time.Second)
			want := appendN(t, s, "t", 1, 30, clk.Now)
			assertSameRecords(t, want, readAll(t, s, "t"))
			require.NoError(t, s.Close())
			assertSameRecords(t, want, readAll(t, openSegs(t, cfg), "t"))
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
