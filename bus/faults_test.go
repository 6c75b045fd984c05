package bus_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/bustest"
	"github.com/sinkbus/sinkbus/middleware"
)

// The smaller validation faults, from Go: each names its field.
func TestIntegrations_Create_refuses_the_smaller_faults(t *testing.T) {
	tb := bustest.New(t)
	for _, tc := range []struct {
		in    bus.Integration
		field string
	}{
		{bus.Integration{Name: "a\x00b"}, "name"},
		{bus.Integration{Name: "\x1b[31mred"}, "name"},
		{bus.Integration{Description: "a\x00b"}, "description"},
		{bus.Integration{Delivery: middleware.Settings{Timeout: 1000 * time.Hour}}, "delivery.timeout"},
		{bus.Integration{Delivery: middleware.Settings{Timeout: middleware.MaxTimeout + 1}}, "delivery.timeout"},
	} {
		tc.in.Sink = bustest.NewSink()
		_, err := tb.Integrations().Create(ctx, tc.in)
		require.ErrorIs(t, err, bus.ErrInvalid, tc.field)
		assert.Equal(t, []string{tc.field}, fieldsOf(err))
	}
	tb.Create(bus.Integration{Description: "line one\n\tline two\r\n", Sink: bustest.NewSink(),
		Delivery: middleware.Settings{Timeout: middleware.MaxTimeout}})
}

// A temporary integration cannot be updated (NewStore); Start and Stop
// still apply to it.
func TestIntegrations_temporary_integration_cannot_be_updated(t *testing.T) {
	tb := bustest.New(t)
	now := tb.Clock.Now()
	tb.Create(bus.Integration{ID: "tmp", Kind: bus.Temporary, StartsAt: now.Add(-time.Hour), EndsAt: now.Add(time.Hour),
		Sink: bustest.NewSink()})
	_, err := tb.Integrations().UpdateFunc(ctx, "tmp", func(in *bus.Integration) error {
		in.Name = "renamed"
		return nil
	})
	require.ErrorIs(t, err, bus.ErrImmutable)
	assert.Equal(t, []string{"kind"}, fieldsOf(err))
	got, err := tb.Integrations().Stop(ctx, "tmp")
	require.NoError(t, err)
	assert.Equal(t, bus.Stopped, got.Status)
	assert.Empty(t, got.Name)
}

// Errors quote ids, but never more of one than an id can be.
func TestIntegrations_errors_do_not_echo_long_ids(t *testing.T) {
	tb := bustest.New(t)
	long := strings.Repeat("x", 100<<10)
	_, err := tb.Integrations().Get(ctx, long)
	require.ErrorIs(t, err, bus.ErrNotFound)
	assert.Less(t, len(err.Error()), 200)
	_, err = tb.Integrations().Get(ctx, "short-id")
	assert.Contains(t, err.Error(), `"short-id"`)
}
