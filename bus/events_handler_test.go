package bus_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/bustest"
	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/sinks"
)

// logAbout returns an integration's log entries about one event, oldest
// first.
func logAbout(t *testing.T, tb *bustest.Bus, id, eventID string) []middleware.LogEntry {
	t.Helper()
	entries, err := tb.Integrations().Log(ctx, id)
	require.NoError(t, err)
	var out []middleware.LogEntry
	for i := len(entries) - 1; i >= 0; i-- {
		if entries[i].EventID == eventID {
			out = append(out, entries[i])
		}
	}
	return out
}

func TestHandlerFunc_plain_error_is_retried_after_each_backoff_until_it_succeeds(t *testing.T) {
	tb := bustest.New(t)
	var calls atomic.Int32
	delivered := make(chan bus.Event, 1)
	require.NoError(t, tb.Handle("mailer", []string{"order.created"}, func(_ context.Context, e bus.Event) error {
		if calls.Add(1) <= 2 {
			return errors.New("smtp: connection refused") // neither permanent nor delayed: retryable
		}
		delivered <- e
		return nil
	}))
	tb.MustPublish(bus.Event{ID: "o-1", Name: "order.created"})

	for retry := 1; retry <= 2; retry++ {
		require.NoError(t, tb.Clock.BlockUntil(waitCtx(t), 1), "retry %d waits on the clock", retry)
		assert.Equal(t, int32(retry), calls.Load(), "no attempt before the backoff has passed")
		wait, ok := tb.Clock.NextDue()
		require.True(t, ok)
		assert.Positive(t, wait)
		tb.Clock.Advance(wait)
	}
	select {
	case e := <-delivered:
		assert.Equal(t, "o-1", e.ID)
		assert.False(t, e.Replayed, "a retry of a live delivery is not a replay")
	case <-time.After(10 * time.Second):
		t.Fatal("not delivered after two retries")
	}
	waitLag(t, tb, "mailer")
	assert.Equal(t, int32(3), calls.Load())

	var retries []string
	for _, e := range logAbout(t, tb, "mailer", "o-1") {
		if e.Action == middleware.ActionRetryTriggered {
			retries = append(retries, e.Reason)
		}
	}
	require.Len(t, retries, 2)
	assert.Contains(t, retries[0], "smtp: connection refused")
	rejected, err := tb.Integrations().Rejected(ctx, "mailer")
	require.NoError(t, err)
	assert.Empty(t, rejected)
}

func TestHandlerFunc_RetryAfter_waits_at_least_that_long(t *testing.T) {
	tb := bustest.New(t)
	var calls atomic.Int32
	delivered := make(chan struct{}, 1)
	require.NoError(t, tb.Handle("mailer", []string{"order.created"}, func(context.Context, bus.Event) error {
		if calls.Add(1) == 1 {
			return sinks.RetryAfter(errors.New("quota exceeded"), 10*time.Minute)
		}
		delivered <- struct{}{}
		return nil
	}))
	tb.MustPublish(bus.Event{ID: "o-1", Name: "order.created"})

	require.NoError(t, tb.Clock.BlockUntil(waitCtx(t), 1))
	wait, _ := tb.Clock.NextDue()
	assert.GreaterOrEqual(t, wait, 10*time.Minute)
	tb.Clock.Advance(wait - time.Second)
	assert.Equal(t, int32(1), calls.Load(), "still waiting")
	tb.Clock.Advance(time.Second)
	select {
	case <-delivered:
	case <-time.After(10 * time.Second):
		t.Fatal("not delivered after the wait")
	}
	assert.Equal(t, int32(2), calls.Load())
}

func TestHandlerFunc_permanent_error_is_rejected_at_once(t *testing.T) {
	tb := bustest.New(t)
	var calls atomic.Int32
	require.NoError(t, tb.Handle("mailer", []string{"order.created"}, func(context.Context, bus.Event) error {
		calls.Add(1)
		return sinks.Permanent(errors.New("no template for this locale"))
	}))
	tb.MustPublish(bus.Event{ID: "o-1", Name: "order.created"})
	waitLag(t, tb, "mailer") // settled: rejected, without advancing the clock

	assert.Equal(t, int32(1), calls.Load(), "one attempt")
	assert.Zero(t, tb.Clock.Waiters(), "no retry waits")
	rejected, err := tb.Integrations().Rejected(ctx, "mailer")
	require.NoError(t, err)
	require.Len(t, rejected, 1)
	assert.Equal(t, "o-1", rejected[0].EventID)
	assert.Contains(t, rejected[0].Reason, "no template for this locale")
	for _, e := range logAbout(t, tb, "mailer", "o-1") {
		assert.NotEqual(t, middleware.ActionRetryTriggered, e.Action)
	}
}
