package replay_test

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/replay"
)

// kib is a record of 1 KiB of payload; its offset is in its UUID.
func kib(i int) *replay.Record {
	p := make([]byte, 1024)
	for j := range p {
		p[j] = 'x'
	}
	return &replay.Record{UUID: fmt.Sprintf("%06d", i), Payload: p}
}

// recordSize is what one kib record counts against MaxBytes.
func recordSize(t *testing.T) int64 {
	m := replay.NewMemory()
	require.NoError(t, m.Append("t", []*replay.Record{kib(1)}, time.Now))
	return m.Size()
}

// heldOffsets lists the offsets a storage holds in topic.
func heldOffsets(t *testing.T, st replay.Storage, topic string) []uint64 {
	t.Helper()
	var out []uint64
	for from := uint64(1); ; {
		recs, err := st.Read(topic, from, 100)
		require.NoError(t, err)
		if len(recs) == 0 {
			return out
		}
		for _, r := range recs {
			out = append(out, r.Offset)
			assert.Equal(t, fmt.Sprintf("%06d", r.Offset), r.UUID, "the record at its offset")
		}
		from = recs[len(recs)-1].Offset + 1
	}
}

func offsets(from, to uint64) []uint64 {
	var out []uint64
	for o := from; o < to; o++ {
		out = append(out, o)
	}
	return out
}

func appendKiB(t *testing.T, m *replay.Memory, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		require.NoError(t, m.Append("t", []*replay.Record{kib(i)}, time.Now))
	}
}

// Without any consumer, the oldest records go, and never more than the
// bound needs.
func TestMemory_holds_no_more_than_MaxBytes(t *testing.T) {
	size := recordSize(t)
	m := replay.NewMemoryWith(replay.MemoryConfig{MaxBytes: 10 * size})
	for i := 1; i <= 100; i++ {
		require.NoError(t, m.Append("t", []*replay.Record{kib(i)}, time.Now))
		assert.LessOrEqual(t, m.Size(), 10*size)
	}
	assert.Equal(t, offsets(91, 101), heldOffsets(t, m, "t"), "the newest ten, every one the bound has room for")
	first, next := m.Bounds("t")
	assert.Equal(t, uint64(91), first)
	assert.Equal(t, uint64(101), next)

	// One batch over the bound: its newest records stay.
	batch := make([]*replay.Record, 25)
	for i := range batch {
		batch[i] = kib(101 + i)
	}
	require.NoError(t, m.Append("t", batch, time.Now))
	assert.Equal(t, offsets(116, 126), heldOffsets(t, m, "t"))
}

func TestMemory_keeps_the_newest_record_of_each_topic_whatever_the_bound(t *testing.T) {
	m := replay.NewMemoryWith(replay.MemoryConfig{MaxBytes: 1})
	appendKiB(t, m, 1, 4)
	require.NoError(t, m.Append("u", []*replay.Record{kib(1)}, time.Now))
	assert.Equal(t, []uint64{3}, heldOffsets(t, m, "t"))
	assert.Equal(t, []uint64{1}, heldOffsets(t, m, "u"))
}

func TestMemory_negative_MaxBytes_keeps_everything(t *testing.T) {
	m := replay.NewMemoryWith(replay.MemoryConfig{MaxBytes: -1})
	appendKiB(t, m, 1, 201)
	assert.Equal(t, offsets(1, 201), heldOffsets(t, m, "t"))
}

// Records every group has acknowledged, by the cursors last saved (the
// watermark and the ranges above it), go before any record a group still
// waits for; then the oldest go.
func TestMemory_acknowledged_records_go_first_then_the_oldest(t *testing.T) {
	size := recordSize(t)
	m := replay.NewMemoryWith(replay.MemoryConfig{MaxBytes: 40 * size})
	appendKiB(t, m, 1, 41)
	require.NoError(t, m.SaveCursors(map[replay.CursorKey]replay.Cursor{
		// g waits for 3, 4 and 20-40 (one event retrying, say, and its backlog).
		{Topic: "t", Group: "g"}: {Next: 3, Acked: []replay.Range{{From: 5, To: 20}}},
		// h has read further; its acknowledgements cover g's.
		{Topic: "t", Group: "h"}:     {Next: 30},
		{Topic: "other", Group: "g"}: {Next: 1000},
	}))

	appendKiB(t, m, 41, 42)
	held := heldOffsets(t, m, "t")
	assert.NotContains(t, held, uint64(1), "acknowledged by both")
	assert.Contains(t, held, uint64(3), "g waits for it")
	assert.Contains(t, held, uint64(19), "room is made only as needed")
	assert.LessOrEqual(t, m.Size(), 40*size)

	// Until nothing acknowledged is left, nothing g waits for goes.
	for i := 42; ; i++ {
		appendKiB(t, m, i, i+1)
		held = heldOffsets(t, m, "t")
		if !contains(held, 3) {
			break
		}
		require.Less(t, i, 200)
	}
	assert.Equal(t, append([]uint64{4}, offsets(20, held[len(held)-1]+1)...), held,
		"every acknowledged record went first; then the oldest, 3, and nothing else")

	// A group deleted no longer holds records back: 4, which only g waited
	// for, goes first, with h's acknowledged records after it.
	require.NoError(t, m.DeleteCursor(replay.CursorKey{Topic: "t", Group: "g"}))
	_, next := m.Bounds("t")
	appendKiB(t, m, int(next), int(next)+1)
	held = heldOffsets(t, m, "t")
	assert.Equal(t, uint64(25), held[0], "down to an eighth below the bound: 4 and 20-24")
}

func contains(xs []uint64, x uint64) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// Seek and Bounds skip the records the bound removed, and Trim removes by
// time around them.
func TestMemory_seek_bounds_and_trim_skip_removed_records(t *testing.T) {
	size := recordSize(t)
	m := replay.NewMemoryWith(replay.MemoryConfig{MaxBytes: 8 * size})
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(i int) func() time.Time {
		return func() time.Time { return start.Add(time.Duration(i) * time.Minute) }
	}
	for i := 1; i <= 8; i++ {
		require.NoError(t, m.Append("t", []*replay.Record{kib(i)}, at(i)))
	}
	require.NoError(t, m.SaveCursors(map[replay.CursorKey]replay.Cursor{{Topic: "t", Group: "g"}: {Next: 2, Acked: []replay.Range{{From: 3, To: 6}}}}))
	require.NoError(t, m.Append("t", []*replay.Record{kib(9)}, at(9)))
	// Making room goes an eighth below the bound: 1, then 3 went.
	assert.Equal(t, []uint64{2, 4, 5, 6, 7, 8, 9}, heldOffsets(t, m, "t"))

	off, err := m.Seek("t", at(3)())
	require.NoError(t, err)
	assert.Equal(t, uint64(4), off, "the first held at or after the time")
	off, err = m.Seek("t", at(10)())
	require.NoError(t, err)
	assert.Equal(t, uint64(10), off)

	n, err := m.Trim(at(7)())
	require.NoError(t, err)
	assert.Equal(t, 4, n, "2, 4, 5 and 6: those removed before are not counted")
	first, next := m.Bounds("t")
	assert.Equal(t, uint64(7), first)
	assert.Equal(t, uint64(10), next)
	assert.Equal(t, 3*size, m.Size())
}

// The bound holds on the heap, not only in the storage's own count: a
// record's estimate covers what it takes, with a bus event's metadata.
func TestMemory_heap_stays_within_MaxBytes(t *testing.T) {
	if testing.Short() {
		t.Skip("appends 40 MiB")
	}
	const bound = 8 << 20
	heapInuse := func() int64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return int64(ms.HeapAlloc)
	}
	payload := make([]byte, 1024)
	for i := range payload {
		payload[i] = 'x'
	}
	base := heapInuse()
	m := replay.NewMemoryWith(replay.MemoryConfig{MaxBytes: bound})
	published := time.Now()
	for i := range 40 << 10 {
		md := map[string]string{
			"sinkbus_name":         "order.created",
			"sinkbus_tenant":       "acme",
			"sinkbus_published_at": published.Add(time.Duration(i)).Format(time.RFC3339Nano),
		}
		require.NoError(t, m.Append("events", []*replay.Record{{UUID: fmt.Sprintf("01JEXAMPLE%016d", i), Metadata: md, Payload: payload}}, time.Now))
	}
	grown := heapInuse() - base
	t.Logf("heap grew by %.1f MiB for a bound of %.1f MiB (counted: %.1f MiB)", float64(grown)/(1<<20), float64(bound)/(1<<20), float64(m.Size())/(1<<20))
	assert.LessOrEqual(t, m.Size(), int64(bound))
	// A little slack for the records' slice, which grows by doubling.
	assert.Less(t, grown, int64(bound)+bound/8, "the heap holds no more than the bound")
	assert.Greater(t, grown, int64(bound)/2, "the estimate is not so pessimistic that half the bound goes unused")
	runtime.KeepAlive(m)
}
