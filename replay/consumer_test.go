package replay_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/internal/clock"
	"github.com/sinkbus/sinkbus/replay"
)

// deadline bounds a wait that only a broken consumer makes long.
func deadline(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func receive(t *testing.T, ctx context.Context, msgs <-chan *message.Message) *message.Message {
	t.Helper()
	select {
	case m, ok := <-msgs:
		require.True(t, ok, "the subscription ended")
		return m
	case <-ctx.Done():
		t.Fatal("no message")
		return nil
	}
}

// A range whose end is still to come must end when the clock gets there,
// even though nothing is published after it.
func TestConsumer_until_in_the_future_ends_when_the_clock_passes_it(t *testing.T) {
	ctx := deadline(t)
	clk := clock.NewFake(time.Time{})
	j := newJournal(t, clk)
	start := clk.Now()
	publishN(t, j, "t", 0, 1, nil)

	ended := make(chan struct{})
	c := j.Consumer(replay.ConsumerConfig{Group: "temp", StartAt: start, Until: start.Add(time.Hour),
		OnEnd: func() { close(ended) }})
	msgs, err := c.Subscribe(context.Background(), "t")
	require.NoError(t, err)
	defer c.Close()
	m := receive(t, ctx, msgs)
	assert.Equal(t, itoa(0), m.Metadata.Get("n"))
	m.Ack()

	// Waiting at the head for Until, it still takes what is published
	// before it.
	require.NoError(t, clk.BlockUntil(ctx, 1), "the consumer waits for Until on the clock")
	clk.Advance(30 * time.Minute)
	publishN(t, j, "t", 1, 1, nil)
	m = receive(t, ctx, msgs)
	assert.Equal(t, itoa(1), m.Metadata.Get("n"))
	m.Ack()

	require.NoError(t, clk.BlockUntil(ctx, 1))
	clk.Advance(31 * time.Minute)
	select {
	case <-ended:
	case <-ctx.Done():
		t.Fatal("the consumer did not end once the clock passed Until")
	}
	_, open := <-msgs
	assert.False(t, open, "the channel closes at the end")
	cur, _ := j.Cursor("t", "temp")

	assert.Equal(t, uint64(3), cur.Next, "both records acknowledged")
}

// A failed read must be tried again after a backoff, not leave the consumer
// waiting for an append that may never come.
func TestConsumer_read_errors_are_retried_after_a_backoff(t *testing.T) {
	ctx := deadline(t)
	clk := clock.NewFake(time.Time{})
	var failures atomic.Int32
	failures.Store(3)
	errDisk := errors.New("disk unplugged")
	st := &hookStorage{Storage: replay.NewMemory(), read: func() error {
		if failures.Add(-1) >= 0 {
			return errDisk
		}
		return nil
	}}
	logger := watermill.NewCaptureLogger()
	j, err := replay.Open(replay.Config{Storage: st, Clock: clk, CompactEvery: -1, Logger: logger})
	require.NoError(t, err)
	defer j.Close()
	publishN(t, j, "t", 0, 1, nil)

	msgs, err := j.Consumer(replay.ConsumerConfig{Group: "g", FromOldest: true}).Subscribe(context.Background(), "t")
	require.NoError(t, err)
	var waits []time.Duration
	for range 3 {
		require.NoError(t, clk.BlockUntil(ctx, 1), "after a failed read the consumer waits on the clock")
		d, ok := clk.NextDue()
		require.True(t, ok)
		waits = append(waits, d)
		clk.Advance(d)
	}
	m := receive(t, ctx, msgs)
	assert.Equal(t, itoa(0), m.Metadata.Get("n"))
	m.Ack()
	assert.Equal(t, []time.Duration{100 * time.Millisecond, 150 * time.Millisecond, 225 * time.Millisecond}, waits,
		"the wait grows while reads keep failing")
	assert.True(t, logger.HasError(errDisk), "the failure is logged")
}

// Nacked messages waiting to be delivered again hold their in-flight slots:
// a consumer whose every message fails stops reading instead of moving its
// whole backlog into memory, and delivers everything once they pass.
func TestConsumer_nacked_messages_hold_their_slots(t *testing.T) {
	ctx := deadline(t)
	clk := clock.NewFake(time.Time{})
	j := newJournal(t, clk)
	const inFlight, total = 2, 50
	publishN(t, j, "t", 0, total, nil)

	c := j.Consumer(replay.ConsumerConfig{Group: "g", FromOldest: true, MaxInFlight: inFlight, NackDelay: time.Minute})
	msgs, err := c.Subscribe(context.Background(), "t")
	require.NoError(t, err)
	defer c.Close()
	var (
		ack  atomic.Bool
		mu   sync.Mutex
		seen = make(map[string]int)
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m := range msgs {
			mu.Lock()
			seen[m.Metadata.Get("n")]++
			all := len(seen) == total
			mu.Unlock()
			if ack.Load() {
				m.Ack()
			} else {
				m.Nack()
			}
			if all && ack.Load() {
				return
			}
		}
	}()

	// Every worker waits for its NackDelay: nothing more is read until then.
	require.NoError(t, clk.BlockUntil(ctx, inFlight))
	mu.Lock()
	distinct := len(seen)
	mu.Unlock()
	assert.LessOrEqual(t, distinct, 2*inFlight, "reading paused behind the nacked messages")

	ack.Store(true)
	for {
		select {
		case <-done:
			mu.Lock()
			defer mu.Unlock()
			assert.Len(t, seen, total, "every message delivered once the failures passed")
			return
		case <-ctx.Done():
			t.Fatal("not every message was delivered")
		case <-time.After(time.Millisecond):
			if d, ok := clk.NextDue(); ok {
				clk.Advance(d)
			}
		}
	}
}

// The clock passing Until does not end a range while an append stamped
// before Until is still being made durable: its record is part of the range.
func TestConsumer_until_waits_for_an_append_under_way(t *testing.T) {
	ctx := deadline(t)
	clk := clock.NewFake(time.Time{})
	asked, release := make(chan struct{}), make(chan struct{})
	var slow atomic.Bool
	st := &hookStorage{Storage: replay.NewMemory(), afterNow: func() {
		if slow.Load() {
			close(asked)
			<-release
		}
	}}
	j, err := replay.Open(replay.Config{Storage: st, Clock: clk, CompactEvery: -1})
	require.NoError(t, err)
	defer j.Close()
	start := clk.Now()
	ended := make(chan struct{})
	msgs, err := j.Consumer(replay.ConsumerConfig{Group: "temp", StartAt: start, Until: start.Add(time.Hour),
		OnEnd: func() { close(ended) }}).Subscribe(context.Background(), "t")
	require.NoError(t, err)
	require.NoError(t, clk.BlockUntil(ctx, 1), "waiting at the head for Until")

	clk.Advance(30 * time.Minute)
	slow.Store(true)
	published := make(chan error, 1)
	go func() {
		m := message.NewMessage(watermill.NewULID(), nil)
		m.Metadata.Set("n", "last")
		published <- j.Publish("t", m)
	}()
	<-asked // stamped at 30 minutes, not stored yet
	clk.Advance(time.Hour)
	// A broken consumer ends now, without the record; give it the chance.
	select {
	case <-ended:
		t.Fatal("the range ended before a record stamped within it was stored")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	require.NoError(t, <-published)
	m := receive(t, ctx, msgs)
	assert.Equal(t, "last", m.Metadata.Get("n"))
	m.Ack()
	select {
	case <-ended:
	case <-ctx.Done():
		t.Fatal("the range did not end")
	}
}

// Idle workers are woken one at a time, or as many as a worker finds work
// for beyond its own: a burst landing on a consumer idle at the head
// still has every slot in flight at once, and a consumer that reaches its
// end stops every worker (its channel closes).
func TestConsumer_idle_workers_wake_for_a_burst_and_all_stop(t *testing.T) {
	const inFlight = 8
	holdAll := func(t *testing.T, ctx context.Context, msgs <-chan *message.Message) {
		t.Helper()
		held := make([]*message.Message, 0, inFlight)
		for len(held) < inFlight { // none is answered before all are out
			held = append(held, receive(t, ctx, msgs))
		}
		for _, m := range held {
			m.Ack()
		}
	}
	for name, sel := range map[string]func(replay.RecordView) replay.Verdict{
		"read":     nil,
		"selected": func(replay.RecordView) replay.Verdict { return replay.Deliver },
	} {
		t.Run(name, func(t *testing.T) {
			ctx := deadline(t)
			j := newJournal(t, clock.OrReal(nil))
			c := j.Consumer(replay.ConsumerConfig{Group: "live", MaxInFlight: inFlight, Select: sel})
			defer c.Close()
			msgs, err := c.Subscribe(context.Background(), "t")
			require.NoError(t, err)
			for round := range 2 {
				time.Sleep(20 * time.Millisecond) // every worker idle at the head
				publishN(t, j, "t", round*inFlight, inFlight, nil)
				holdAll(t, ctx, msgs)
			}

			ranged := j.Consumer(replay.ConsumerConfig{
				Group: "range", FromOldest: true, UntilOffset: 2*inFlight + 1, MaxInFlight: inFlight, Select: sel,
			})
			defer ranged.Close()
			msgs, err = ranged.Subscribe(context.Background(), "t")
			require.NoError(t, err)
			holdAll(t, ctx, msgs)
			holdAll(t, ctx, msgs)
			select {
			case _, open := <-msgs:
				assert.False(t, open, "the consumer ends at UntilOffset")
			case <-ctx.Done():
				t.Fatal("a worker did not stop")
			}
		})
	}
}
