package bus_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/bustest"
	"github.com/sinkbus/sinkbus/middleware"
)

// A temporary integration whose ends_at is still to come delivers what is
// published until then and completes when the clock passes ends_at, though
// nothing is published after it.
func TestIntegrations_temporary_integration_ending_in_the_future_completes_on_the_clock(t *testing.T) {
	tb := bustest.New(t)
	start := tb.Clock.Now()
	sink := tb.NewSinkIntegration(bus.Integration{ID: "sap-1", Kind: bus.Temporary, Concurrency: 1,
		StartsAt: start, EndsAt: start.Add(time.Hour)})
	tb.MustPublish(bus.Event{Name: "order.created", ID: "in-range"})
	assert.Equal(t, "in-range", sink.WaitFor(t, 1)[0].ID)
	waitLag(t, tb, "sap-1")
	in, err := tb.Integrations().Get(ctx, "sap-1")
	require.NoError(t, err)
	assert.Equal(t, bus.Running, in.Status, "still running before ends_at")

	// The integration waits for ends_at on the clock.
	require.NoError(t, tb.Clock.BlockUntil(waitCtx(t), 1))
	tb.Clock.Advance(time.Hour + time.Second)
	// Published past ends_at, while the integration may still be running.
	tb.MustPublish(bus.Event{Name: "order.created", ID: "after"})
	require.Eventually(t, func() bool {
		in, err := tb.Integrations().Get(ctx, "sap-1")
		return err == nil && in.Status == bus.Stopped
	}, 10*time.Second, time.Millisecond, "the integration stops itself once ends_at has passed")
	entries, err := tb.Integrations().Log(ctx, "sap-1")
	require.NoError(t, err)
	require.NotEmpty(t, entries)
	assert.Equal(t, middleware.ActionIntegrationCompleted, entries[0].Action)

	assert.Len(t, sink.Events(), 1, "nothing after ends_at")
}
