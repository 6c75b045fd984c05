package bus_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/middleware"
)

// A manual retry that fails leaves the stored event with the new failure:
// its reason, status code and one more attempt.
func TestIntegrations_RetryRejected_that_fails_records_the_new_failure(t *testing.T) {
	tb := lifecycleBus(t)
	sink := tb.NewSinkIntegration(bus.Integration{ID: "erp"})
	sink.FailNext(1, 400)
	tb.MustPublish(bus.Event{ID: "e1", Name: "order.created"})
	// The rejection is stored, then logged: wait for both, so that the
	// retry's entry is the newest.
	require.Eventually(t, func() bool {
		l, err := tb.Integrations().Rejected(ctx, "erp")
		entries, lerr := tb.Integrations().Log(ctx, "erp")
		return err == nil && len(l) == 1 && lerr == nil && len(entries) > 0 &&
			entries[0].Action == middleware.ActionEventRejected
	}, 10*time.Second, time.Millisecond)
	first, err := tb.Integrations().RejectedEvent(ctx, "erp", "e1")
	require.NoError(t, err)
	assert.Equal(t, 400, first.StatusCode)
	assert.Equal(t, 1, first.Attempts)

	tb.Clock.Advance(1)
	sink.FailNext(1, 422)
	require.Error(t, tb.Integrations().RetryRejected(ctx, "erp", "e1"))
	again, err := tb.Integrations().RejectedEvent(ctx, "erp", "e1")
	require.NoError(t, err)
	assert.Equal(t, 422, again.StatusCode)
	assert.Contains(t, again.Reason, "422")
	assert.Equal(t, 2, again.Attempts)
	assert.True(t, again.CreatedAt.After(first.CreatedAt), "the newest failure")
	entries, err := tb.Integrations().Log(ctx, "erp")
	require.NoError(t, err)
	require.NotEmpty(t, entries)
	assert.Equal(t, middleware.ActionEventRejected, entries[0].Action, "the failed retry is in the log")
	assert.Equal(t, "e1", entries[0].EventID)
	assert.Contains(t, entries[0].Reason, "Retry failed: ")
	assert.Contains(t, entries[0].Reason, "422")

	require.NoError(t, tb.Integrations().RetryRejected(ctx, "erp", "e1"))
	_, err = tb.Integrations().RejectedEvent(ctx, "erp", "e1")
	assert.Error(t, err, "delivered, it leaves the store")
	assert.Equal(t, []string{"e1"}, eventIDs(sink.Events()))
	entries, err = tb.Integrations().Log(ctx, "erp")
	require.NoError(t, err)
	assert.Equal(t, middleware.ActionRejectedDelivered, entries[0].Action, "the log tells the event was delivered in the end")
	assert.Equal(t, "e1", entries[0].EventID)
}
