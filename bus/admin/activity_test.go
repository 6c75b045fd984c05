package admin

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/sinks"
)

// Activity counts the attempts of the hour before now, by integration,
// forgets older ones, and forgets an integration with nothing in the hour.
func TestActivity_counts_the_last_hour(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 30, 0, time.UTC)
	a := NewActivity()
	a.now = func() time.Time { return now }
	ok := middleware.Attempt{IntegrationID: "acme/erp", Class: sinks.ClassDelivered}
	failed := middleware.Attempt{IntegrationID: "acme/erp", Class: sinks.ClassRetryable, Err: errors.New("503")}

	a.Attempted("webhook", ok)
	a.Attempted("webhook", failed)
	now = now.Add(30 * time.Minute)
	a.Attempted("webhook", ok)
	a.Attempted("webhook", middleware.Attempt{IntegrationID: "other", Class: sinks.ClassDelivered})
	assert.Equal(t, Counts{Delivered: 2, Failed: 1}, a.Last("acme/erp"))
	assert.Equal(t, Counts{Delivered: 1}, a.Last("other"))
	assert.Equal(t, Counts{}, a.Last("nobody"))

	now = now.Add(30 * time.Minute) // the first two are an hour old
	assert.Equal(t, Counts{Delivered: 1}, a.Last("acme/erp"))
	now = now.Add(61 * time.Minute)
	assert.Equal(t, Counts{}, a.Last("acme/erp"))
	a.Attempted("webhook", middleware.Attempt{IntegrationID: "new", Class: sinks.ClassDelivered})
	assert.Len(t, a.refs, 1, "integrations with nothing in the hour are forgotten")
}
