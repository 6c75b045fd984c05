package replay_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/internal/clock"
	"github.com/sinkbus/sinkbus/internal/stopping"
	"github.com/sinkbus/sinkbus/replay"
)

func newJournal(t *testing.T, clk clock.Clock) *replay.Journal {
	t.Helper()
	j, err := replay.Open(replay.Config{Clock: clk, CompactEvery: -1})
	require.NoError(t, err)
	t.Cleanup(func() { _ = j.Close() })
	return j
}

func publishN(t *testing.T, j *replay.Journal, topic string, from, n int, key func(i int) string) {
	t.Helper()
	for i := from; i < from+n; i++ {
		m := message.NewMessage(watermill.NewULID(), []byte(`{}`))
		m.Metadata.Set("n", itoa(i))
		if key != nil {
			m.Metadata.Set("key", key(i))
		}
		require.NoError(t, j.Publish(topic, m))
	}
}

func itoa(i int) string { return time.Duration(i).String() }

func TestConsumer_resumes_from_cursor_and_redelivers_unacked(t *testing.T) {
	j := newJournal(t, nil)
	publishN(t, j, "t", 0, 10, nil)
	c := j.Consumer(replay.ConsumerConfig{Group: "g", FromOldest: true})
	ctx, cancel := context.WithCancel(context.Background())
	msgs, err := c.Subscribe(ctx, "t")
	require.NoError(t, err)
	for i := 0; i < 4; i++ {
		m := <-msgs
		assert.Equal(t, itoa(i), m.Metadata.Get("n"))
		m.Ack()
	}
	m := <-msgs // fifth: never acknowledged
	assert.Equal(t, itoa(4), m.Metadata.Get("n"))
	cancel()
	for range msgs {
	}
	require.NoError(t, c.Close())
	cur, ok := j.Cursor("t", "g")
	require.True(t, ok)
	assert.Equal(t, uint64(5), cur.Next, "cursor = first unacknowledged offset")

	again, err := j.Consumer(replay.ConsumerConfig{Group: "g"}).Subscribe(context.Background(), "t")
	require.NoError(t, err)
	m = <-again
	assert.Equal(t, itoa(4), m.Metadata.Get("n"), "the unacknowledged message comes again")
	m.Ack()
}

func TestConsumer_stop_grace_lets_an_answer_under_way_land(t *testing.T) {
	for _, tc := range []struct {
		grace  time.Duration
		cursor uint64
	}{
		// Offsets start at 1: a cursor of 1 has the first record to come.
		{grace: time.Minute, cursor: 2}, // acknowledged within the grace
		{grace: 0, cursor: 1},           // cut off: delivered again
	} {
		j := newJournal(t, nil)
		publishN(t, j, "t", 0, 2, nil)
		group := "g" + tc.grace.String()
		c := j.Consumer(replay.ConsumerConfig{Group: group, FromOldest: true, StopGrace: tc.grace})
		ctx, cancel := context.WithCancel(context.Background())
		msgs, err := c.Subscribe(ctx, "t")
		require.NoError(t, err)
		m := <-msgs
		cancel()
		// The stop signal is raised at once; the context lives on only
		// with a grace.
		select {
		case <-stopping.Signal(m.Context()):
		case <-time.After(5 * time.Second):
			t.Fatal("no stop signal")
		}
		if tc.grace > 0 {
			assert.NoError(t, m.Context().Err(), "the attempt under way may finish")
			m.Ack()
		} else {
			<-m.Context().Done()
		}
		for range msgs {
		}
		require.NoError(t, c.Close())
		cur, _ := j.Cursor("t", group)
		assert.Equal(t, tc.cursor, cur.Next, "grace %s", tc.grace)
	}
}

func TestConsumer_close_ends_the_stop_grace(t *testing.T) {
	j := newJournal(t, nil)
	publishN(t, j, "t", 0, 1, nil)
	c := j.Consumer(replay.ConsumerConfig{Group: "g", FromOldest: true, StopGrace: time.Hour})
	msgs, err := c.Subscribe(context.Background(), "t")
	require.NoError(t, err)
	m := <-msgs
	require.NoError(t, c.Close()) // would wait an hour for the answer otherwise
	assert.Error(t, m.Context().Err())
	_, open := <-msgs
	assert.False(t, open)
	cur, _ := j.Cursor("t", "g")
	assert.Equal(t, uint64(1), cur.Next, "still at the first record")
}

func TestConsumer_order_key_keeps_key_order_and_lets_others_pass(t *testing.T) {
	j := newJournal(t, nil)
	key := func(i int) string {
		if i%2 == 0 {
			return "slow"
		}
		return "fast-" + itoa(i)
	}
	publishN(t, j, "t", 0, 10, key)
	c := j.Consumer(replay.ConsumerConfig{Group: "g", FromOldest: true, MaxInFlight: 4,
		OrderKey: func(m *message.Message) string { return m.Metadata.Get("key") }})
	msgs, err := c.Subscribe(context.Background(), "t")
	require.NoError(t, err)
	defer c.Close()

	// Workers send concurrently, so arrival order across keys is free; but
	// while the first "slow" is held no other "slow" may come, and every
	// other key must still get through.
	var held *message.Message
	fast := 0
	for held == nil || fast < 5 {
		m := <-msgs
		if m.Metadata.Get("key") == "slow" {
			require.Nil(t, held, "a second slow message while the first is in flight")
			held = m
			continue
		}
		fast++
		m.Ack()
	}
	assert.Equal(t, itoa(0), held.Metadata.Get("n"))
	held.Ack()
	var slow []string
	for len(slow) < 4 {
		m := <-msgs
		if m.Metadata.Get("key") == "slow" {
			slow = append(slow, m.Metadata.Get("n"))
		}
		m.Ack()
	}
	assert.Equal(t, []string{itoa(2), itoa(4), itoa(6), itoa(8)}, slow)
}

func TestConsumer_until_ends_after_range(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	j := newJournal(t, clk)
	publishN(t, j, "t", 0, 3, nil)
	start := clk.Now()
	clk.Advance(time.Hour)
	publishN(t, j, "t", 3, 3, nil)
	clk.Advance(time.Hour)
	publishN(t, j, "t", 6, 3, nil)

	ended := make(chan struct{})
	c := j.Consumer(replay.ConsumerConfig{StartAt: start.Add(time.Minute), Until: start.Add(90 * time.Minute),
		OnEnd: func() { close(ended) }})
	msgs, err := c.Subscribe(context.Background(), "t")
	require.NoError(t, err)
	var got []string
	for m := range msgs {
		got = append(got, m.Metadata.Get("n"))
		m.Ack()
	}
	<-ended
	assert.Equal(t, []string{itoa(3), itoa(4), itoa(5)}, got)
}

func TestConsumer_retention_loss_is_reported(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	j, err := replay.Open(replay.Config{Clock: clk, Retention: 24 * time.Hour, CompactEvery: -1})
	require.NoError(t, err)
	defer j.Close()
	require.NoError(t, j.SetCursor("t", "g", 1))
	publishN(t, j, "t", 0, 5, nil)
	clk.Advance(48 * time.Hour)
	publishN(t, j, "t", 5, 2, nil)
	n, err := j.Compact()
	require.NoError(t, err)
	assert.Equal(t, 5, n)

	var lost uint64
	msgs, err := j.Consumer(replay.ConsumerConfig{Group: "g", OnRetentionLoss: func(n uint64) { lost = n }}).Subscribe(context.Background(), "t")
	require.NoError(t, err)
	m := <-msgs
	assert.Equal(t, uint64(5), lost)
	assert.Equal(t, itoa(5), m.Metadata.Get("n"))
	m.Ack()
}

func TestConsumer_retention_loss_while_running_behind_is_reported(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	j, err := replay.Open(replay.Config{Clock: clk, Retention: 24 * time.Hour, CompactEvery: -1})
	require.NoError(t, err)
	defer j.Close()
	var lost atomic.Uint64
	msgs, err := j.Consumer(replay.ConsumerConfig{Group: "g", OnRetentionLoss: func(n uint64) { lost.Add(n) }}).Subscribe(context.Background(), "t")
	require.NoError(t, err)
	publishN(t, j, "t", 0, 1, nil)
	first := <-msgs // held: the reader stays behind what follows
	publishN(t, j, "t", 1, 5, nil)
	clk.Advance(48 * time.Hour)
	publishN(t, j, "t", 6, 1, nil)
	n, err := j.Compact()
	require.NoError(t, err)
	require.Equal(t, 6, n)
	first.Ack()

	m := <-msgs
	assert.Equal(t, itoa(6), m.Metadata.Get("n"))
	assert.Equal(t, uint64(5), lost.Load(), "the five trimmed before the reader got to them")
	m.Ack()
}
