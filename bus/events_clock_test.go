package bus_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
)

// jumpClock is an application's own Clock, written against the exported
// names only: a simulation clock whose timers fire at once, moving its time
// forward by their duration.
type jumpClock struct {
	mu    sync.Mutex
	now   time.Time
	waits []time.Duration
}

var _ bus.Clock = (*jumpClock)(nil)

func (c *jumpClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *jumpClock) NewTimer(d time.Duration) bus.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waits = append(c.waits, d)
	c.now = c.now.Add(max(d, 0))
	t := firedTimer(make(chan time.Time, 1))
	t <- c.now
	return t
}

func (c *jumpClock) timers() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.waits...)
}

// firedTimer has fired already.
type firedTimer chan time.Time

func (t firedTimer) C() <-chan time.Time { return t }
func (t firedTimer) Stop() bool          { return false }

func TestConfig_Clock_can_be_an_application_type(t *testing.T) {
	start := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	clk := &jumpClock{now: start}
	b, err := bus.New(bus.Config{Clock: clk})
	require.NoError(t, err)
	runCtx, cancel := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- b.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, b.Close())
		require.NoError(t, <-ran)
	})
	<-b.Running()

	var calls atomic.Int32
	delivered := make(chan bus.Event, 1)
	require.NoError(t, b.Handle("mailer", []string{"order.*"}, func(_ context.Context, e bus.Event) error {
		if calls.Add(1) == 1 {
			return errors.New("smtp: connection refused")
		}
		delivered <- e
		return nil
	}))
	require.NoError(t, b.Publish(ctx, bus.Event{ID: "o-1", Name: "order.created"}))
	select {
	case e := <-delivered:
		assert.Equal(t, start, e.PublishedAt, "published at the clock's time")
	case <-time.After(10 * time.Second):
		t.Fatal("not delivered")
	}
	assert.Equal(t, int32(2), calls.Load())
	waits := clk.timers()
	require.NotEmpty(t, waits, "the retry waited on the application's clock")
	assert.Positive(t, waits[0])
}
