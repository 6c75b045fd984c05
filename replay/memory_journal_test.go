package replay_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/replay"
)

// publishKiB publishes kib records from..to-1 (their number in the UUID).
func publishKiB(t *testing.T, j *replay.Journal, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		r := kib(i)
		require.NoError(t, j.Publish("t", message.NewMessage(r.UUID, r.Payload)))
	}
}

// journalOn opens a journal on mem, closed when the test ends.
func journalOn(t *testing.T, mem *replay.Memory) *replay.Journal {
	t.Helper()
	j, err := replay.Open(replay.Config{Storage: mem, CompactEvery: -1})
	require.NoError(t, err)
	t.Cleanup(func() { _ = j.Close() })
	return j
}

// boundJournal is a journal on a Memory that holds n kib records.
func boundJournal(t *testing.T, n int64) (*replay.Memory, *replay.Journal) {
	t.Helper()
	mem := replay.NewMemoryWith(replay.MemoryConfig{MaxBytes: n * recordSize(t)})
	return mem, journalOn(t, mem)
}

// subscribeCounting subscribes cfg's consumer to topic "t" and returns its
// messages and how many records it was told it lost.
func subscribeCounting(t *testing.T, j *replay.Journal, cfg replay.ConsumerConfig) (<-chan *message.Message, *atomic.Uint64) {
	t.Helper()
	lost := new(atomic.Uint64)
	cfg.OnRetentionLoss = func(n uint64) { lost.Add(n) }
	msgs, err := j.Consumer(cfg).Subscribe(context.Background(), "t")
	require.NoError(t, err)
	return msgs, lost
}

// A group that was not reading while the bound removed its records is told
// how many at start, and gets what is held.
func TestJournal_in_memory_a_stopped_group_is_told_what_the_bound_removed(t *testing.T) {
	_, j := boundJournal(t, 10)
	require.NoError(t, j.SetCursor("t", "stopped", 1))
	publishKiB(t, j, 1, 31)

	msgs, lost := subscribeCounting(t, j, replay.ConsumerConfig{Group: "stopped"})
	m := <-msgs
	assert.Equal(t, "000021", m.UUID, "the oldest held")
	assert.Equal(t, uint64(20), lost.Load())
	m.Ack()
}

// A group running behind (its one message in flight unanswered) is told of
// the records the bound removed before it read them, when it gets there.
func TestJournal_in_memory_a_group_running_behind_is_told_what_the_bound_removed(t *testing.T) {
	_, j := boundJournal(t, 10)
	msgs, lost := subscribeCounting(t, j, replay.ConsumerConfig{Group: "g"})
	publishKiB(t, j, 1, 2)
	first := <-msgs
	publishKiB(t, j, 2, 31)
	first.Ack()

	var got []string
	for len(got) == 0 || got[len(got)-1] != "000030" {
		m := <-msgs
		got = append(got, m.UUID)
		m.Ack()
	}
	assert.Equal(t, []string{"000021", "000022", "000023", "000024", "000025", "000026", "000027", "000028", "000029", "000030"}, got,
		"the newest ten, all the bound holds")
	assert.Equal(t, uint64(19), lost.Load(), "2-20")
}

// A group that keeps up loses nothing, while the bound makes room again and
// again behind it.
func TestJournal_in_memory_a_group_that_keeps_up_loses_nothing(t *testing.T) {
	mem, j := boundJournal(t, 50)
	msgs, lost := subscribeCounting(t, j, replay.ConsumerConfig{Group: "g", MaxInFlight: 4})
	const total = 2000
	for i := 0; i < total; i += 10 {
		publishKiB(t, j, i, i+10) // ten at a time: the reader stays well within the bound
		for range 10 {
			(<-msgs).Ack()
		}
	}
	assert.Zero(t, lost.Load())
	assert.LessOrEqual(t, mem.Size(), 50*recordSize(t))
}

// A restarted group is not told it lost records its cursor says it had
// acknowledged (the ranges above its watermark), which the bound removed
// first; only those it had not.
func TestJournal_in_memory_acknowledged_records_removed_are_not_counted_as_lost(t *testing.T) {
	size := recordSize(t)
	mem := replay.NewMemoryWith(replay.MemoryConfig{MaxBytes: 12 * size})
	appendKiB(t, mem, 1, 13)
	// 1 was retrying when the group stopped; 2-9 were acknowledged.
	require.NoError(t, mem.SaveCursors(map[replay.CursorKey]replay.Cursor{
		{Topic: "t", Group: "g"}: {Next: 1, Acked: []replay.Range{{From: 2, To: 10}}},
	}))
	appendKiB(t, mem, 13, 21)
	assert.Equal(t, append([]uint64{1}, offsets(10, 21)...), heldOffsets(t, mem, "t"), "2-9 went first")
	appendKiB(t, mem, 21, 22)
	assert.Equal(t, offsets(10, 22), heldOffsets(t, mem, "t"), "then 1, which g had not acknowledged")

	msgs, lost := subscribeCounting(t, journalOn(t, mem), replay.ConsumerConfig{Group: "g"})
	select {
	case m := <-msgs:
		assert.Equal(t, "000010", m.UUID)
		m.Ack()
	case <-time.After(10 * time.Second):
		t.Fatal("nothing delivered")
	}
	assert.Equal(t, uint64(1), lost.Load(), "1 only")
}

// A replay (a consumer with no group, ending at an offset) whose records the
// bound removed ahead of it is told how many, and delivers nothing past its
// end although the next record it reads is beyond it.
func TestJournal_in_memory_a_replay_overtaken_by_the_bound_stops_at_its_end(t *testing.T) {
	mem, j := boundJournal(t, 300)
	publishKiB(t, j, 1, 301)

	ended := make(chan struct{})
	msgs, lost := subscribeCounting(t, j, replay.ConsumerConfig{FromOldest: true, UntilOffset: 301, OnEnd: func() { close(ended) }})
	first := <-msgs // the reader holds 1-256, its first read
	publishKiB(t, j, 301, 601)
	assert.Equal(t, offsets(301, 601), heldOffsets(t, mem, "t"), "257-300 went before the replay read them")
	first.Ack()

	var got []string
	for m := range msgs {
		got = append(got, m.UUID)
		m.Ack()
	}
	<-ended
	require.NotEmpty(t, got)
	assert.Equal(t, "000256", got[len(got)-1], "nothing past its end")
	assert.Len(t, got, 255)
	assert.Equal(t, uint64(44), lost.Load(), "257-300")
}
