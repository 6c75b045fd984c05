package bus_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/bustest"
	"github.com/sinkbus/sinkbus/filter"
	"github.com/sinkbus/sinkbus/middleware"
)

// Update replaces the whole integration: a partial one is refused rather
// than clearing what it leaves out. UpdateFunc changes only what its
// function changes: a renamed integration observing order.created does not
// start receiving cart.updated.
func TestIntegrations_Update_partial_is_refused_and_UpdateFunc_changes_only_what_it_sets(t *testing.T) {
	tb := lifecycleBus(t)
	sink := bustest.NewSink()
	settings := middleware.Settings{Timeout: 7 * time.Second, Retry: middleware.RetryPolicy{MaxAttempts: 3}}
	tb.Create(bus.Integration{
		ID: "erp", Name: "ERP", Observes: []string{"order.created"}, Sink: sink,
		Filter:   filter.Conditions{Payload: json.RawMessage(`{"total":{"$gte":100}}`)},
		Delivery: settings, Concurrency: 2, OrderKey: "payload.order_id",
	})
	before, err := tb.Integrations().Get(ctx, "erp")
	require.NoError(t, err)

	_, err = tb.Integrations().Update(ctx, "erp", bus.Integration{Name: "Renamed"})
	require.ErrorIs(t, err, bus.ErrInvalid)
	assert.Equal(t, []string{"configuration"}, fieldsOf(err))
	after, err := tb.Integrations().Get(ctx, "erp")
	require.NoError(t, err)
	assert.Equal(t, before, after, "a refused update changes nothing")

	renamed, err := tb.Integrations().UpdateFunc(ctx, "erp", func(in *bus.Integration) error {
		in.Name = "Renamed"
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, "Renamed", renamed.Name)
	want := before
	want.Name, want.UpdatedAt = "Renamed", renamed.UpdatedAt
	assert.Equal(t, want, renamed, "everything else as it was")

	tb.MustPublish(
		bus.Event{ID: "cart", Name: "cart.updated", Payload: json.RawMessage(`{"total":500}`)},
		bus.Event{ID: "small", Name: "order.created", Payload: json.RawMessage(`{"total":5,"order_id":"o-1"}`)},
		bus.Event{ID: "big", Name: "order.created", Payload: json.RawMessage(`{"total":500,"order_id":"o-2"}`)},
	)
	assert.Equal(t, []string{"big"}, eventIDs(sink.WaitFor(t, 1)))
	waitLag(t, tb, "erp")
	assert.Len(t, sink.Events(), 1, "the filter still holds after the rename")

	// Update with what Get returned, changed, replaces as asked.
	got, err := tb.Integrations().Get(ctx, "erp")
	require.NoError(t, err)
	got.Observes, got.Filter = []string{"cart.updated"}, filter.Conditions{}
	_, err = tb.Integrations().Update(ctx, "erp", got)
	require.NoError(t, err)
	tb.MustPublish(bus.Event{ID: "cart-2", Name: "cart.updated"})
	assert.Equal(t, []string{"big", "cart-2"}, eventIDs(sink.WaitFor(t, 2)))
}

func TestIntegrations_UpdateFunc_refuses_what_cannot_change_and_returns_the_functions_error(t *testing.T) {
	tb := lifecycleBus(t)
	tb.Create(bus.Integration{ID: "erp", Observes: []string{"order.*"}, Sink: bustest.NewSink()})
	before, err := tb.Integrations().Get(ctx, "erp")
	require.NoError(t, err)

	oops := errors.New("oops")
	_, err = tb.Integrations().UpdateFunc(ctx, "erp", func(in *bus.Integration) error {
		in.Observes = nil
		return oops
	})
	assert.ErrorIs(t, err, oops)
	for name, fn := range map[string]func(*bus.Integration){
		"id":   func(in *bus.Integration) { in.ID = "other" },
		"kind": func(in *bus.Integration) { in.Kind = bus.Temporary },
	} {
		_, err := tb.Integrations().UpdateFunc(ctx, "erp", func(in *bus.Integration) error { fn(in); return nil })
		require.ErrorIs(t, err, bus.ErrImmutable, name)
		assert.Equal(t, []string{name}, fieldsOf(err))
	}
	_, err = tb.Integrations().Update(ctx, "erp", bus.Integration{ID: "other", Sink: bustest.NewSink()})
	assert.ErrorIs(t, err, bus.ErrImmutable)
	_, err = tb.Integrations().UpdateFunc(ctx, "nope", func(*bus.Integration) error { return nil })
	assert.ErrorIs(t, err, bus.ErrNotFound)

	after, err := tb.Integrations().Get(ctx, "erp")
	require.NoError(t, err)
	assert.Equal(t, before, after)
}
