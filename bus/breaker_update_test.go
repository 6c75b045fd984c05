package bus_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/bustest"
	"github.com/sinkbus/sinkbus/middleware"
)

// An update that keeps the destination keeps the outage: the circuit stays
// open and the waiting event does not hit the destination again. An update
// of the destination closes it, and the log says so.
func TestIntegrations_update_keeps_the_circuit_of_the_same_destination(t *testing.T) {
	const id = "erp"
	tb := outageBus(t)
	down := &outageSink{name: "erp-1", down: true, delivered: make(map[string]int)}
	tb.Create(bus.Integration{ID: id, Concurrency: 1, Sink: down, Delivery: middleware.Settings{
		Retry:   middleware.RetryPolicy{InitialInterval: time.Second, RandomizationFactor: -1},
		Breaker: middleware.BreakerPolicy{WarnAfter: 2, OpenAfter: 3},
	}})
	tb.MustPublish(bus.Event{ID: "o-1", Name: "order.created"})
	retryUntilOpen(t, tb, id, 1)
	require.True(t, parkedOpen(t, tb, id, 1), "the event waits behind the open circuit")
	before, err := tb.Integrations().Circuit(ctx, id)
	require.NoError(t, err)
	attempts, _ := down.counts()

	_, err = tb.Integrations().UpdateFunc(ctx, id, func(in *bus.Integration) error { in.Name = "ERP"; return nil })
	require.NoError(t, err)
	nackDelay(t, tb)
	require.True(t, parkedOpen(t, tb, id, 1), "the event waits behind the open circuit")
	after, err := tb.Integrations().Circuit(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, before.OpenedAt, after.OpenedAt)
	assert.Equal(t, before.ConsecutiveFailures, after.ConsecutiveFailures)
	assert.Equal(t, before.NextProbeAt, after.NextProbeAt)
	again, _ := down.counts()
	assert.Equal(t, attempts, again, "no attempt at a destination known to be down")
	assert.NotContains(t, logActions(t, tb.Bus, id), middleware.ActionCircuitReset)

	// An update whose new sink cannot start is undone, circuit included.
	_, err = tb.Integrations().UpdateFunc(ctx, id, func(in *bus.Integration) error {
		in.Sink = &outageSink{name: "erp-3", broken: true}
		return nil
	})
	require.Error(t, err)
	undone, err := tb.Integrations().Circuit(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, middleware.StateOpen, undone.State)
	assert.Equal(t, before.OpenedAt, undone.OpenedAt)
	assert.NotContains(t, logActions(t, tb.Bus, id), middleware.ActionCircuitReset)

	up := &outageSink{name: "erp-2", delivered: make(map[string]int)}
	_, err = tb.Integrations().UpdateFunc(ctx, id, func(in *bus.Integration) error { in.Sink = up; return nil })
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		tb.Clock.Advance(100 * time.Millisecond) // the nack delay, whenever its timer is set
		_, n := up.counts()
		return n == 1
	}, 10*time.Second, time.Millisecond, "the new destination gets the event after the nack delay")
	attemptsAfter, _ := down.counts()
	assert.Equal(t, attempts, attemptsAfter, "the old destination was not tried again")
	st, err := tb.Integrations().Circuit(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, middleware.StateClosed, st.State)
	reset := logReasons(t, tb.Bus, id, middleware.ActionCircuitReset)
	require.Len(t, reset, 1)
	assert.Contains(t, reset[0], "Circuit reset by an update of the integration (open for ")
}

// nackDelay lets the event the update's stop nacked come back: the
// journal's nack delay (one second) runs on the test clock.
func nackDelay(t *testing.T, tb *bustest.Bus) {
	t.Helper()
	require.NoError(t, tb.Clock.BlockUntil(waitCtx(t), 1))
	tb.Clock.Advance(time.Second)
}

// An in-process handler's circuit outlives a rename too: its configuration
// is the code, the same before and after.
func TestIntegrations_update_keeps_a_handlers_circuit(t *testing.T) {
	tb := bustest.New(t)
	require.NoError(t, tb.Handle("mailer", nil, func(context.Context, bus.Event) error {
		return errors.New("smtp: 421 service not available")
	}, func(in *bus.Integration) {
		in.Concurrency = 1
		in.Delivery = middleware.Settings{
			Retry:   middleware.RetryPolicy{InitialInterval: time.Second, RandomizationFactor: -1},
			Breaker: middleware.BreakerPolicy{WarnAfter: 2, OpenAfter: 3},
		}
	}))
	tb.MustPublish(bus.Event{ID: "o-1", Name: "order.created"})
	retryUntilOpen(t, tb, "mailer", 1)
	require.True(t, parkedOpen(t, tb, "mailer", 1))
	before, err := tb.Integrations().Circuit(ctx, "mailer")
	require.NoError(t, err)

	_, err = tb.Integrations().UpdateFunc(ctx, "mailer", func(in *bus.Integration) error { in.Name = "Mailer"; return nil })
	require.NoError(t, err)
	after, err := tb.Integrations().Circuit(ctx, "mailer")
	require.NoError(t, err)
	assert.Equal(t, middleware.StateOpen, after.State)
	assert.Equal(t, before.OpenedAt, after.OpenedAt)
	assert.NotContains(t, logActions(t, tb.Bus, "mailer"), middleware.ActionCircuitReset)
}
