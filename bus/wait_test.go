package bus_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/bustest"
	"github.com/sinkbus/sinkbus/middleware"
)

// shortCtx is a context that ends soon: for a wait that must not return.
func shortCtx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	t.Cleanup(cancel)
	return c
}

func TestWaitDelivered_returns_once_what_was_published_is_delivered_or_rejected(t *testing.T) {
	tb := bustest.New(t)
	m := tb.Integrations()
	retry := middleware.Settings{Retry: middleware.RetryPolicy{InitialInterval: time.Second}}
	flaky := tb.NewSinkIntegration(bus.Integration{ID: "flaky", Observes: []string{"order.*"}, Delivery: retry})
	refusing := tb.NewSinkIntegration(bus.Integration{ID: "refusing", Observes: []string{"order.*"}})
	tb.NewSinkIntegration(bus.Integration{ID: "quiet", Observes: []string{"cart.*"}})
	flaky.FailNext(1, http.StatusServiceUnavailable)
	refusing.FailNext(1, http.StatusBadRequest)
	tb.MustPublish(bus.Event{ID: "e1", Name: "order.created"}, bus.Event{ID: "e2", Name: "order.created"})

	require.NoError(t, m.WaitDelivered(waitCtx(t), "refusing"), "a rejection settles an event")
	assert.Len(t, refusing.Events(), 1)
	rejected, err := m.Rejected(ctx, "refusing")
	require.NoError(t, err)
	assert.Len(t, rejected, 1)
	require.NoError(t, m.WaitDelivered(waitCtx(t), "quiet"), "what it does not observe is settled")

	// flaky's retry waits on the clock: neither wait returns before it moves.
	require.NoError(t, tb.Clock.BlockUntil(waitCtx(t), 1))
	assert.ErrorIs(t, m.WaitDelivered(shortCtx(t), "flaky"), context.DeadlineExceeded)
	assert.ErrorIs(t, tb.WaitDelivered(shortCtx(t)), context.DeadlineExceeded)
	done := make(chan error, 1)
	go func() { done <- tb.WaitDelivered(waitCtx(t)) }()
	tb.Clock.Advance(time.Minute)
	require.NoError(t, <-done)
	assert.Equal(t, []string{"e1", "e2"}, sortedIDs(flaky.Events()), "everything published before the call")
	require.NoError(t, m.WaitDelivered(waitCtx(t), "flaky"))
}

func TestWaitDelivered_does_not_wait_for_a_stopped_integration(t *testing.T) {
	tb := bustest.New(t)
	m := tb.Integrations()
	tb.NewSinkIntegration(bus.Integration{ID: "stopped", Status: bus.Stopped})
	live := tb.Record()
	tb.MustPublish(bus.Event{ID: "e1", Name: "order.created"})

	assert.ErrorIs(t, m.WaitDelivered(waitCtx(t), "stopped"), bus.ErrNotRunning)
	assert.ErrorIs(t, m.WaitDelivered(waitCtx(t), "missing"), bus.ErrNotFound)
	require.NoError(t, tb.WaitDelivered(waitCtx(t)), "the bus waits for what runs")
	assert.Len(t, live.Events(), 1)

	// Stopped during the wait.
	blocked := tb.NewSinkIntegration(bus.Integration{ID: "blocked",
		Delivery: middleware.Settings{Retry: middleware.RetryPolicy{InitialInterval: time.Minute}}})
	blocked.FailNext(1, http.StatusServiceUnavailable)
	tb.MustPublish(bus.Event{ID: "e2", Name: "order.created"})
	require.NoError(t, tb.Clock.BlockUntil(waitCtx(t), 1))
	done := make(chan error, 1)
	go func() { done <- m.WaitDelivered(waitCtx(t), "blocked") }()
	_, err := m.Stop(ctx, "blocked")
	require.NoError(t, err)
	assert.ErrorIs(t, <-done, bus.ErrNotRunning)

	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	assert.ErrorIs(t, tb.WaitDelivered(canceled), context.Canceled)
}
