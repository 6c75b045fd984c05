// Package storagetest is the contract of replay.Storage as tests. Every
// storage engine (the in-memory one, the segment log, PostgreSQL) runs it,
// so that they are held to one contract and a journal behaves the same on
// each: offsets dense from 1, times that never go back, seeks by time,
// retention, cursors, concurrent appenders, and Watermill's universal
// Pub/Sub suite on a Journal over the storage.
//
//	func TestMyStorage(t *testing.T) {
//		storagetest.Run(t, storagetest.Factory{New: func(t *testing.T) replay.Storage { ... }})
//	}
package storagetest

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/replay"
)

// Factory opens the storages the suite tests.
type Factory struct {
	// New returns an empty storage. The suite closes it (and may close it
	// twice: Close must be idempotent).
	New func(t *testing.T) replay.Storage
	// Reopen, for a durable storage, closes st and opens the same store
	// again. Nil skips the checks across a reopen.
	Reopen func(t *testing.T, st replay.Storage) replay.Storage
}

// Run runs the whole contract: the storage's own and the journal's over it.
func Run(t *testing.T, f Factory) {
	t.Run("storage", func(t *testing.T) { RunStorage(t, f) })
	t.Run("journal", func(t *testing.T) { RunJournal(t, f) })
}

// RunStorage runs the storage's own contract.
func RunStorage(t *testing.T, f Factory) {
	tests := []struct {
		name string
		fn   func(*testing.T, Factory)
	}{
		{"round_trip_with_metadata_and_empty_payloads", testRoundTrip},
		{"keeps_no_reference_to_what_was_appended", testKeepsNoReference},
		{"offsets_dense_and_times_clamped", testOffsetsDense},
		{"concurrent_appenders_keep_offsets_dense_and_times_ordered", testConcurrentAppenders},
		{"seek_by_time", testSeek},
		{"trim_moves_bounds_and_hides_records", testTrim},
		{"cursors_save_load_delete", testCursors},
		{"topic_names", testTopicNames},
		{"check_append_answers_while_open", testCheckAppend},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, f) })
	}
}

// StepClock returns start, start+step, start+2*step... one per call: each
// Append gets a later time.
type StepClock struct {
	mu   sync.Mutex
	now  time.Time
	step time.Duration
}

// NewStepClock starts at 2026-03-01 12:00 UTC.
func NewStepClock(step time.Duration) *StepClock {
	return &StepClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), step: step}
}

// Now returns the next time.
func (c *StepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.now
	c.now = c.now.Add(c.step)
	return t
}

// Record returns the i-th test record: metadata and a payload of a length
// that varies with i.
func Record(i int) *replay.Record {
	return &replay.Record{
		UUID:     fmt.Sprintf("uuid-%d", i),
		Metadata: map[string]string{"i": strconv.Itoa(i), "name": "order.fulfilled"},
		Payload:  []byte(fmt.Sprintf(`{"n":%d,"pad":%q}`, i, strings.Repeat("x", i%50))),
	}
}

// AppendN appends records from..from+n-1 one call each and returns them as
// stored (offsets and times set).
func AppendN(t testing.TB, s replay.Storage, topic string, from, n int, now func() time.Time) []replay.Record {
	t.Helper()
	out := make([]replay.Record, 0, n)
	for i := from; i < from+n; i++ {
		r := Record(i)
		require.NoError(t, s.Append(topic, []*replay.Record{r}, now))
		out = append(out, *r)
	}
	return out
}

// AppendConcurrently appends writers*perWriter one-record calls to topic
// from writers goroutines at once, the records named "w-i", and fails t at
// the first error; check is called with each record once its Append
// returned (nil: none).
func AppendConcurrently(t testing.TB, s replay.Storage, topic string, writers, perWriter int, check func(*replay.Record)) {
	t.Helper()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				rec := &replay.Record{UUID: fmt.Sprintf("%d-%d", w, i), Payload: []byte(`{}`)}
				if !assert.NoError(t, s.Append(topic, []*replay.Record{rec}, time.Now)) {
					return
				}
				if check != nil {
					check(rec)
				}
			}
		}()
	}
	wg.Wait()
}

// ReadAll reads every retained record of topic, a few at a time.
func ReadAll(t testing.TB, s replay.Storage, topic string) []replay.Record {
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

// AssertSameRecords compares records field by field (times with Equal, an
// empty metadata map like a nil one).
func AssertSameRecords(t testing.TB, want, got []replay.Record) {
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

func open(t *testing.T, f Factory) replay.Storage {
	t.Helper()
	s := f.New(t)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// reopen returns st reopened, or st itself when the storage is not durable.
func reopen(t *testing.T, f Factory, st replay.Storage) (replay.Storage, bool) {
	t.Helper()
	if f.Reopen == nil {
		return st, false
	}
	s := f.Reopen(t, st)
	t.Cleanup(func() { _ = s.Close() })
	return s, true
}

func testRoundTrip(t *testing.T, f Factory) {
	s := open(t, f)
	clk := NewStepClock(time.Millisecond)
	recs := []*replay.Record{
		{UUID: "a", Metadata: map[string]string{"k": "v", "empty": "", "ünï": "çødé"}, Payload: []byte(`{"x":1}`)},
		{UUID: "b"},
		{UUID: "", Metadata: map[string]string{}, Payload: []byte{}},
		{UUID: "d", Payload: []byte(strings.Repeat("p", 200_000))},
	}
	require.NoError(t, s.Append("orders", recs, clk.Now))
	for i, r := range recs {
		assert.Equal(t, uint64(i+1), r.Offset, "Append sets the offsets")
		assert.True(t, r.Time.Equal(recs[0].Time), "one call, one time")
	}

	got, err := s.Read("orders", 1, 10)
	require.NoError(t, err)
	want := make([]replay.Record, len(recs))
	for i, r := range recs {
		want[i] = *r
	}
	AssertSameRecords(t, want, got)

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
	require.Len(t, third, 1)
	assert.Equal(t, uint64(3), third[0].Offset)
	fromZero, err := s.Read("orders", 0, 2)
	require.NoError(t, err)
	require.Len(t, fromZero, 2)
	assert.Equal(t, uint64(1), fromZero[0].Offset, "offsets start at 1")
	none, err := s.Read("orders", 5, 10)
	require.NoError(t, err)
	assert.Empty(t, none)
	none, err = s.Read("unknown", 1, 10)
	require.NoError(t, err)
	assert.Empty(t, none)
	first, next = s.Bounds("unknown")
	assert.Equal(t, uint64(1), first)
	assert.Equal(t, uint64(1), next)
}

func testKeepsNoReference(t *testing.T, f Factory) {
	s := open(t, f)
	payload := []byte(`{"total":1}`)
	md := map[string]string{"k": "v"}
	require.NoError(t, s.Append("t", []*replay.Record{{UUID: "a", Payload: payload, Metadata: md}}, time.Now))
	copy(payload, `{"total":2}`) // the publisher reuses its buffer
	md["k"] = "changed"

	recs, err := s.Read("t", 0, 10)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	assert.JSONEq(t, `{"total":1}`, string(recs[0].Payload))
	assert.Equal(t, "v", recs[0].Metadata["k"])
}

func testOffsetsDense(t *testing.T, f Factory) {
	clk := NewStepClock(time.Second)
	s := open(t, f)
	want := AppendN(t, s, "orders", 1, 60, clk.Now)
	for i, r := range want {
		require.Equal(t, uint64(i+1), r.Offset)
	}
	AssertSameRecords(t, want, ReadAll(t, s, "orders"))
	s, durable := reopen(t, f, s)
	if durable {
		AssertSameRecords(t, want, ReadAll(t, s, "orders"))
	}
	first, next := s.Bounds("orders")
	assert.Equal(t, uint64(1), first)
	assert.Equal(t, uint64(61), next)

	// Appends continue after the last offset, and time never goes back.
	early := func() time.Time { return want[0].Time.Add(-time.Hour) }
	more := AppendN(t, s, "orders", 61, 3, early)
	assert.Equal(t, uint64(61), more[0].Offset)
	for _, r := range more {
		assert.True(t, r.Time.Equal(want[len(want)-1].Time), "time clamped to the last record's")
	}
	AssertSameRecords(t, more, ReadAll(t, s, "orders")[60:])
	assert.Equal(t, []string{"orders"}, s.Topics())

	// Random reads land on the right record.
	for _, off := range []uint64{1, 2, 17, 33, 59, 60, 61, 63} {
		recs, err := s.Read("orders", off, 1)
		require.NoError(t, err)
		require.Len(t, recs, 1)
		assert.Equal(t, off, recs[0].Offset)
	}
}

func testConcurrentAppenders(t *testing.T, f Factory) {
	s := open(t, f)
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
					if !assert.Equal(t, next, r.Offset, "a reader sees every offset, in order") {
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

	all := ReadAll(t, s, "t")
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

func testSeek(t *testing.T, f Factory) {
	s := open(t, f)
	clk := NewStepClock(time.Second)
	want := AppendN(t, s, "orders", 1, 40, clk.Now)
	// Two records with the same time (one Append call).
	pair := []*replay.Record{Record(41), Record(42)}
	require.NoError(t, s.Append("orders", pair, clk.Now))
	t0 := want[0].Time

	check := func(t *testing.T, s replay.Storage) {
		cases := []struct {
			name string
			at   time.Time
			want uint64
		}{
			{"before everything", t0.Add(-time.Hour), 1},
			{"first record", t0, 1},
			{"exact record time", t0.Add(17 * time.Second), 18},
			{"between records", t0.Add(17*time.Second + time.Millisecond), 19},
			{"a nanosecond after a record", t0.Add(17*time.Second + time.Nanosecond), 19},
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
	if s, durable := reopen(t, f, s); durable {
		t.Run("reopened", func(t *testing.T) { check(t, s) })
	}
}

func testTrim(t *testing.T, f Factory) {
	s := open(t, f)
	clk := NewStepClock(time.Second)
	want := AppendN(t, s, "orders", 1, 40, clk.Now)
	AppendN(t, s, "other", 1, 3, clk.Now)

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
	AssertSameRecords(t, want[20:], ReadAll(t, s, "orders"))
	fromOne, err := s.Read("orders", 1, 1)
	require.NoError(t, err)
	require.Len(t, fromOne, 1)
	assert.Equal(t, first, fromOne[0].Offset, "trimmed records are skipped silently")
	off, err := s.Seek("orders", want[0].Time)
	require.NoError(t, err)
	assert.Equal(t, first, off, "Seek finds no trimmed record")

	// Everything is old: every record is hidden, offsets go on.
	n, err = s.Trim(clk.Now().Add(time.Hour))
	require.NoError(t, err)
	assert.Equal(t, 20+3, n, "the rest of orders and the three of other")
	first, next = s.Bounds("orders")
	assert.Equal(t, uint64(41), first)
	assert.Equal(t, uint64(41), next)
	assert.Empty(t, ReadAll(t, s, "orders"))
	more := AppendN(t, s, "orders", 41, 1, clk.Now)
	assert.Equal(t, uint64(41), more[0].Offset, "offsets go on")

	s, durable := reopen(t, f, s)
	if !durable {
		return
	}
	f2, n2 := s.Bounds("orders")
	assert.Equal(t, uint64(41), f2, "the trim survives a reopen")
	assert.Equal(t, uint64(42), n2)
	AssertSameRecords(t, more, ReadAll(t, s, "orders"))
	otherFirst, otherNext := s.Bounds("other")
	assert.Equal(t, uint64(4), otherFirst, "other topics are trimmed by the same cut")
	assert.Equal(t, uint64(4), otherNext)
}

func testCursors(t *testing.T, f Factory) {
	s := open(t, f)
	got, err := s.Cursors()
	require.NoError(t, err)
	assert.Empty(t, got)

	a := replay.CursorKey{Topic: "orders", Group: "hook-1"}
	b := replay.CursorKey{Topic: "orders", Group: "hook-2"}
	c := replay.CursorKey{Topic: "carts", Group: "acme/hook-1"} // a tenant's integration: its ref
	acked := []replay.Range{{From: 8, To: 10}, {From: 12, To: 13}}
	require.NoError(t, s.SaveCursors(map[replay.CursorKey]replay.Cursor{a: {Next: 5}, b: {Next: 7}}))
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
	again, err := s.Cursors()
	require.NoError(t, err)
	assert.Equal(t, want[a], again[a], "Cursors returns a copy")

	// Saving a cursor back to what it was is saved too.
	require.NoError(t, s.SaveCursors(map[replay.CursorKey]replay.Cursor{b: {Next: 8}}))
	require.NoError(t, s.SaveCursors(map[replay.CursorKey]replay.Cursor{b: {Next: 7}}))
	require.NoError(t, s.DeleteCursor(b))
	require.NoError(t, s.DeleteCursor(replay.CursorKey{Topic: "none", Group: "none"}))
	got, err = s.Cursors()
	require.NoError(t, err)
	assert.Equal(t, map[replay.CursorKey]replay.Cursor{a: want[a], c: want[c]}, got)

	if s, durable := reopen(t, f, s); durable {
		got, err = s.Cursors()
		require.NoError(t, err)
		assert.Equal(t, map[replay.CursorKey]replay.Cursor{a: want[a], c: want[c]}, got, "cursors survive a reopen")
	}
}

// testTopicNames: names a storage must take as they are. (Segments takes any
// byte string; a database's text cannot hold NUL or invalid UTF-8.)
func testTopicNames(t *testing.T, f Factory) {
	topics := []string{
		"order.fulfilled", "Order.Fulfilled", "", ".", "..", "../escape", "a/b\\c", "cursors.json",
		".hidden", "spaces and %41 percent", "ünïcødé", "tilde~name", "!bang", "'quote\"",
		strings.Repeat("long.", 80),
	}
	s := open(t, f)
	clk := NewStepClock(time.Second)
	for i, topic := range topics {
		require.NoError(t, s.Append(topic, []*replay.Record{Record(i)}, clk.Now), "topic %q", topic)
	}
	s, _ = reopen(t, f, s)
	got := s.Topics()
	assert.ElementsMatch(t, topics, got)
	for i, topic := range topics {
		recs, err := s.Read(topic, 1, 10)
		require.NoError(t, err)
		require.Len(t, recs, 1, "topic %q", topic)
		assert.Equal(t, fmt.Sprintf("uuid-%d", i), recs[0].UUID)
	}
}

// testCheckAppend: a storage that is a replay.AppendChecker (what bus
// readiness asks) takes appends when it says so, before and after a
// topic's first, and says it does not once closed.
func testCheckAppend(t *testing.T, f Factory) {
	s := f.New(t)
	c, ok := s.(replay.AppendChecker)
	if !ok {
		t.Skip("not a replay.AppendChecker")
	}
	clk := NewStepClock(time.Second)
	assert.NoError(t, c.CheckAppend("events"), "before the topic's first append")
	AppendN(t, s, "events", 0, 1, clk.Now)
	assert.NoError(t, c.CheckAppend("events"))
	require.NoError(t, s.Close())
	assert.Error(t, c.CheckAppend("events"), "closed")
}
