package replay_test

import (
	"bytes"
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/replay"
	"github.com/sinkbus/sinkbus/replay/segments"
)

// drain stops a subscription and waits for its channel to close.
func drain(cancel context.CancelFunc, msgs <-chan *message.Message) {
	cancel()
	for range msgs {
	}
}

// One message held unacknowledged while everything after it is acknowledged:
// the watermark stays at the held one, the cursor keeps the rest as ranges,
// the lag counts only the held one, and the group's next consumer (after a
// stop, or after the storage is reopened) delivers the held one alone.
func TestConsumer_restart_skips_what_was_acknowledged_above_the_watermark(t *testing.T) {
	for name, storage := range map[string]func(t *testing.T, dir string) replay.Storage{
		"memory": func(*testing.T, string) replay.Storage { return replay.NewMemory() },
		"segments": func(t *testing.T, dir string) replay.Storage {
			s, err := segments.Open(segments.Config{Dir: dir})
			require.NoError(t, err)
			return s
		},
	} {
		t.Run(name, func(t *testing.T) {
			ctx := deadline(t)
			dir := t.TempDir()
			st := storage(t, dir)
			j, err := replay.Open(replay.Config{Storage: st, CompactEvery: -1})
			require.NoError(t, err)
			const total = 500
			publishN(t, j, "t", 0, total, nil)

			sub, cancel := context.WithCancel(context.Background())
			msgs, err := j.Consumer(replay.ConsumerConfig{Group: "g", FromOldest: true, MaxInFlight: 4}).Subscribe(sub, "t")
			require.NoError(t, err)
			var held *message.Message
			for acked := 0; acked < total-1 || held == nil; {
				m := receive(t, ctx, msgs)
				if m.Metadata.Get("n") == itoa(0) {
					held = m // never answered: a delivery retrying for hours
					continue
				}
				m.Ack()
				acked++
			}
			require.Eventually(t, func() bool { return j.Lag("t", "g") == 1 }, 10*time.Second, time.Millisecond,
				"only the held message is undelivered")
			cur, ok := j.Cursor("t", "g")
			require.True(t, ok)
			assert.Equal(t, replay.Cursor{Next: 1, Acked: []replay.Range{{From: 2, To: total + 1}}}, cur)
			drain(cancel, msgs)
			require.NoError(t, j.Flush())

			if name == "segments" { // the cursor comes back from the disk
				require.NoError(t, j.Close())
				j, err = replay.Open(replay.Config{Storage: storage(t, dir), CompactEvery: -1})
				require.NoError(t, err)
			}
			defer j.Close()
			assert.Equal(t, uint64(1), j.Lag("t", "g"))
			publishN(t, j, "t", total, 1, nil)
			again, err := j.Consumer(replay.ConsumerConfig{Group: "g", MaxInFlight: 4}).Subscribe(context.Background(), "t")
			require.NoError(t, err)
			var got []string
			for range 2 {
				m := receive(t, ctx, again)
				got = append(got, m.Metadata.Get("n"))
				m.Ack()
			}
			assert.ElementsMatch(t, []string{itoa(0), itoa(total)}, got,
				"the held message and the new one; nothing acknowledged comes again")
			require.Eventually(t, func() bool { return j.Lag("t", "g") == 0 }, 10*time.Second, time.Millisecond)
			cur, _ = j.Cursor("t", "g")
			assert.Equal(t, replay.Cursor{Next: total + 2}, cur, "the watermark moved over the ranges")
		})
	}
}

// Messages of one order key wait behind the one in flight in memory: their
// payloads are kept only up to MaxWaitingPayloadBytes (the others are read
// again when their turn comes), reading pauses at MaxWaitingBytes and says
// so, and once the key moves every message arrives, in order, whole.
func TestConsumer_memory_behind_a_busy_key_is_bounded_in_bytes(t *testing.T) {
	ctx := deadline(t)
	var reads, singleReads int
	var readMu sync.Mutex
	st := &hookStorage{Storage: replay.NewMemory()}
	st.readMax = func(max int) {
		readMu.Lock()
		defer readMu.Unlock()
		reads++
		if max == 1 {
			singleReads++
		}
	}
	j, err := replay.Open(replay.Config{Storage: st, CompactEvery: -1})
	require.NoError(t, err)
	defer j.Close()

	const (
		payload  = 4 << 10
		slow     = 600      // messages of the key that is held
		maxBytes = 64 << 10 // a quarter for payloads: 4 of them
	)
	body := func(i int) []byte { return bytes.Repeat([]byte{byte('a' + i%26)}, payload) }
	for i := range slow + 10 {
		m := message.NewMessage(watermill.NewULID(), body(i))
		m.Metadata.Set("n", strconv.Itoa(i))
		m.Metadata.Set("key", "slow")
		if i >= slow {
			m.Metadata.Set("key", "other-"+strconv.Itoa(i))
		}
		require.NoError(t, j.Publish("t", m))
	}
	var pauseMu sync.Mutex
	var pauses []bool
	c := j.Consumer(replay.ConsumerConfig{Group: "g", FromOldest: true, MaxInFlight: 4,
		OrderKey:        func(m *message.Message) string { return m.Metadata.Get("key") },
		MaxWaitingBytes: maxBytes,
		OnPause: func(paused bool, waiting int64) {
			pauseMu.Lock()
			defer pauseMu.Unlock()
			pauses = append(pauses, paused)
		}})
	msgs, err := c.Subscribe(context.Background(), "t")
	require.NoError(t, err)
	defer c.Close()

	held := receive(t, ctx, msgs)
	require.Equal(t, "0", held.Metadata.Get("n"))
	// What comes while the first is held: the other keys... or nothing,
	// because the slow key's queue has filled the memory bound before
	// reading got to them. Either way reading must pause at the bound.
	require.Eventually(t, func() bool { return c.Stats().Paused }, 10*time.Second, time.Millisecond,
		"reading pauses once the slow key's queue fills MaxWaitingBytes")
	stats := c.Stats()
	assert.LessOrEqual(t, stats.WaitingBytes, int64(maxBytes)+payload, "within the bound, give or take the last record")
	assert.LessOrEqual(t, stats.WaitingPayloadBytes, int64(maxBytes/4)+payload, "payloads within a quarter of it")
	assert.Greater(t, stats.Waiting, maxBytes/4/payload, "past the payload bound, waiting records keep only their offset")

	held.Ack()
	got := map[string]int{} // n -> times
	var slowOrder []int
	for len(got) < slow+9 {
		m := receive(t, ctx, msgs)
		n, err := strconv.Atoi(m.Metadata.Get("n"))
		require.NoError(t, err)
		assert.Equal(t, body(n), []byte(m.Payload), "message %d arrives whole", n)
		got[m.Metadata.Get("n")]++
		if n < slow {
			slowOrder = append(slowOrder, n)
		}
		m.Ack()
	}
	for i := 1; i < len(slowOrder); i++ {
		require.Less(t, slowOrder[i-1], slowOrder[i], "the slow key keeps its order")
	}
	for n, k := range got {
		assert.Equal(t, 1, k, "message %s once", n)
	}
	pauseMu.Lock()
	assert.Equal(t, []bool{true, false}, pauses, "one pause, reported once, and its end")
	pauseMu.Unlock()
	readMu.Lock()
	assert.Greater(t, singleReads, 0, "stripped records are read again one by one")
	readMu.Unlock()
	require.Eventually(t, func() bool { return j.Lag("t", "g") == 0 }, 10*time.Second, time.Millisecond)
	assert.Zero(t, c.Stats().WaitingBytes)
}

// Read-ahead is bounded in bytes too: without an order key, big records are
// read a few at a time, never a whole batch of 256.
func TestConsumer_read_ahead_is_bounded_in_bytes(t *testing.T) {
	ctx := deadline(t)
	j := newJournal(t, nil)
	const payload = 256 << 10
	for i := range 64 {
		m := message.NewMessage(watermill.NewULID(), bytes.Repeat([]byte{'x'}, payload))
		m.Metadata.Set("n", itoa(i))
		require.NoError(t, j.Publish("t", m))
	}
	c := j.Consumer(replay.ConsumerConfig{Group: "g", FromOldest: true, MaxWaitingBytes: 4 << 20})
	msgs, err := c.Subscribe(context.Background(), "t")
	require.NoError(t, err)
	defer c.Close()
	for i := range 64 {
		m := receive(t, ctx, msgs)
		assert.Equal(t, itoa(i), m.Metadata.Get("n"))
		assert.LessOrEqual(t, c.Stats().WaitingPayloadBytes, int64(1<<20), "read ahead within a quarter of 4 MiB")
		m.Ack()
	}
}

// shiftedStorage numbers its records from a trillion: a group whose cursor
// is at 1 is a trillion records behind.
type shiftedStorage struct {
	replay.Storage
	shift uint64
}

func (s shiftedStorage) Append(topic string, recs []*replay.Record, now func() time.Time) error {
	err := s.Storage.Append(topic, recs, now)
	for _, r := range recs {
		r.Offset += s.shift
	}
	return err
}

func (s shiftedStorage) Read(topic string, from uint64, n int) ([]replay.Record, error) {
	recs, err := s.Storage.Read(topic, max(from, s.shift)-s.shift, n)
	for i := range recs {
		recs[i].Offset += s.shift
	}
	return recs, err
}

func (s shiftedStorage) Bounds(topic string) (uint64, uint64) {
	first, next := s.Storage.Bounds(topic)
	return first + s.shift, next + s.shift
}

func (s shiftedStorage) Seek(topic string, at time.Time) (uint64, error) {
	o, err := s.Storage.Seek(topic, at)
	return o + s.shift, err
}

// A group restarted with offsets acknowledged above its cursor, whose
// oldest records retention trims while it is behind, is told what it lost
// and never gets the acknowledged records again, although the read that
// finds the gap holds them.
func TestConsumer_acknowledged_records_past_a_trimmed_gap_are_not_sent_again(t *testing.T) {
	ctx := deadline(t)
	base := time.Now().Add(-time.Hour)
	mem := replay.NewMemory()
	for i := range 40 {
		rec := &replay.Record{UUID: strconv.Itoa(i + 1), Payload: []byte(`{}`)}
		require.NoError(t, mem.Append("t", []*replay.Record{rec}, func() time.Time { return base.Add(time.Duration(i) * time.Second) }))
	}
	require.NoError(t, mem.SaveCursors(map[replay.CursorKey]replay.Cursor{
		{Topic: "t", Group: "g"}: {Next: 1, Acked: []replay.Range{{From: 10, To: 25}}}}))
	var once sync.Once
	st := &hookStorage{Storage: mem, read: func() error {
		once.Do(func() { // offsets 1-14, once the reader has started at 1
			_, err := mem.Trim(base.Add(14 * time.Second))
			require.NoError(t, err)
		})
		return nil
	}}
	j, err := replay.Open(replay.Config{Storage: st, CompactEvery: -1})
	require.NoError(t, err)
	defer j.Close()

	var lost atomic.Uint64
	msgs, err := j.Consumer(replay.ConsumerConfig{Group: "g", MaxInFlight: 4, OnRetentionLoss: func(n uint64) { lost.Add(n) }}).
		Subscribe(context.Background(), "t")
	require.NoError(t, err)
	var got, want []string
	for i := 25; i <= 40; i++ {
		want = append(want, strconv.Itoa(i))
		m := receive(t, ctx, msgs)
		got = append(got, m.UUID)
		m.Ack()
	}
	assert.ElementsMatch(t, want, got, "the acknowledged 15-24 are not sent again")
	assert.Equal(t, uint64(9), lost.Load(), "1-9: 10-14 were acknowledged")
	require.Eventually(t, func() bool {
		cur, _ := j.Cursor("t", "g")
		return cur.Next == 41 && len(cur.Acked) == 0
	}, 5*time.Second, time.Millisecond)
}

// Retention and unreadable gaps are skipped as ranges: a group a trillion
// offsets behind resumes at once, and counts what it lost.
func TestConsumer_skips_a_trillion_lost_offsets_at_once(t *testing.T) {
	ctx := deadline(t)
	const shift = 1_000_000_000_000
	j, err := replay.Open(replay.Config{Storage: shiftedStorage{replay.NewMemory(), shift}, CompactEvery: -1})
	require.NoError(t, err)
	defer j.Close()
	publishN(t, j, "t", 0, 2, nil)
	require.NoError(t, j.SetCursor("t", "g", 1))
	assert.Equal(t, uint64(2), j.Lag("t", "g"), "what was lost before the oldest record is not lag")

	var lost uint64
	msgs, err := j.Consumer(replay.ConsumerConfig{Group: "g", OnRetentionLoss: func(n uint64) { lost += n }}).
		Subscribe(context.Background(), "t")
	require.NoError(t, err)
	for i := range 2 {
		m := receive(t, ctx, msgs)
		assert.Equal(t, itoa(i), m.Metadata.Get("n"))
		m.Ack()
	}
	assert.Equal(t, uint64(shift), lost)
	require.Eventually(t, func() bool { return j.Lag("t", "g") == 0 }, 10*time.Second, time.Millisecond)
}

// A closed consumer says so, not that the journal is closed; and the
// subscriptions of a long-lived consumer (the journal's own Subscribe) are
// forgotten once they end.
func TestConsumer_closed_and_ended_subscriptions(t *testing.T) {
	j := newJournal(t, nil)
	for range 100 {
		sub, cancel := context.WithCancel(context.Background())
		msgs, err := j.Subscribe(sub, "t")
		require.NoError(t, err)
		drain(cancel, msgs)
	}
	require.Eventually(t, func() bool { return replay.DefaultSubscriptions(j) == 0 }, 10*time.Second, time.Millisecond,
		"ended subscriptions are forgotten")

	c := j.Consumer(replay.ConsumerConfig{Group: "g"})
	require.NoError(t, c.Close())
	_, err := c.Subscribe(context.Background(), "t")
	require.ErrorIs(t, err, replay.ErrConsumerClosed)
	assert.NotErrorIs(t, err, replay.ErrClosed)
}
