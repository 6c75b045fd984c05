package bus_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/bustest"
	"github.com/sinkbus/sinkbus/replay"
)

// restarts opens buses one after the other on one journal storage, as an
// application restarting on the same data: the integrations it does not
// create again are gone, the journal and its cursors stay.
type restarts struct {
	t     *testing.T
	st    replay.Storage
	clock *bustest.Clock
}

func newRestarts(t *testing.T) *restarts {
	return &restarts{t: t, st: replay.NewMemory(), clock: bustest.NewClock(time.Time{})}
}

func (r *restarts) open() *bus.Bus {
	return startBus(r.t, bus.Config{Storage: r.st, Clock: r.clock, Sinks: bustest.Registry(),
		CloseTimeout: 5 * time.Second})
}

// publish publishes events named order.created with ids, a minute apart.
func (r *restarts) publish(b *bus.Bus, ids ...string) {
	r.t.Helper()
	for _, id := range ids {
		r.clock.Advance(time.Minute)
		require.NoError(r.t, b.Publish(ctx, bus.Event{ID: id, Name: "order.created"}))
	}
}

func noop(context.Context, bus.Event) error { return nil }

// A handler the application stopped registering leaves its cursor; a new
// integration with its id starts at the head, or at its StartsAt, and does
// not inherit what the handler had not received.
func TestIntegrations_Create_does_not_inherit_the_cursor_of_an_unregistered_handler(t *testing.T) {
	rs := newRestarts(t)
	b1 := rs.open()
	require.NoError(t, b1.Handle("x", nil, noop, func(in *bus.Integration) { in.Status = bus.Stopped }))
	require.NoError(t, b1.Handle("y", nil, noop, func(in *bus.Integration) { in.Status = bus.Stopped }))
	require.NoError(t, b1.Close())

	b2 := rs.open() // x and y are no longer registered
	rs.publish(b2, "old-1")
	from := rs.clock.Now().Add(time.Minute)
	rs.publish(b2, "old-2", "old-3")
	_, ok := b2.Events().Cursor("x")
	require.True(t, ok, "the handler's cursor is still there")

	fresh := bustest.NewSink()
	_, err := b2.Integrations().Create(ctx, bus.Integration{ID: "x", Sink: fresh})
	require.NoError(t, err)
	fromThen := bustest.NewSink()
	_, err = b2.Integrations().Create(ctx, bus.Integration{ID: "y", Sink: fromThen, StartsAt: from})
	require.NoError(t, err)
	rs.publish(b2, "new-1")

	assert.Equal(t, []string{"new-1"}, eventIDs(fresh.WaitFor(t, 1)))
	assert.Equal(t, []string{"new-1", "old-2", "old-3"}, sortedIDs(fromThen.WaitFor(t, 3)))
	settled(t, b2, "x")
	settled(t, b2, "y")
	assert.Len(t, fresh.Events(), 1, "none of the handler's missed events")
	assert.Len(t, fromThen.Events(), 3)
}

// Registered again, a handler resumes from its cursor; with StartsAt it
// starts there instead.
func TestHandle_again_resumes_from_the_cursor_unless_StartsAt_says_where(t *testing.T) {
	rs := newRestarts(t)
	b1 := rs.open()
	require.NoError(t, b1.Handle("x", nil, noop, func(in *bus.Integration) { in.Status = bus.Stopped }))
	require.NoError(t, b1.Handle("y", nil, noop, func(in *bus.Integration) { in.Status = bus.Stopped }))
	rs.publish(b1, "old-1")
	from := rs.clock.Now().Add(time.Minute)
	rs.publish(b1, "old-2")
	require.NoError(t, b1.Close())

	b2 := rs.open()
	resumed, fromThen := make(chan string, 10), make(chan string, 10)
	require.NoError(t, b2.Handle("x", nil, handlerOf(resumed), func(in *bus.Integration) { in.Concurrency = 1 }))
	require.NoError(t, b2.Handle("y", nil, handlerOf(fromThen), func(in *bus.Integration) {
		in.Concurrency, in.StartsAt = 1, from
	}))
	settled(t, b2, "x")
	settled(t, b2, "y")
	assert.Equal(t, []string{"old-1", "old-2"}, drain(resumed))
	assert.Equal(t, []string{"old-2"}, drain(fromThen))
}

func drain(ch chan string) []string {
	var out []string
	for {
		select {
		case id := <-ch:
			out = append(out, id)
		default:
			return out
		}
	}
}

// Unhandle (or Delete) forgets what an unregistered handler left, so that
// registering it again starts afresh; it refuses what is not a handler.
func TestBus_Unhandle_forgets_a_handler_the_application_no_longer_registers(t *testing.T) {
	rs := newRestarts(t)
	b1 := rs.open()
	for _, id := range []string{"x", "y"} {
		require.NoError(t, b1.Handle(id, nil, noop, func(in *bus.Integration) { in.Status = bus.Stopped }))
	}
	require.NoError(t, b1.Close())

	b2 := rs.open()
	rs.publish(b2, "old-1")
	require.NoError(t, b2.Unhandle("x"))
	require.NoError(t, b2.Integrations().Delete(ctx, "y"), "Delete forgets leftovers too")
	for _, id := range []string{"x", "y"} {
		_, ok := b2.Events().Cursor(id)
		assert.False(t, ok, id)
	}
	assert.ErrorIs(t, b2.Unhandle("x"), bus.ErrNotFound, "nothing left")
	assert.ErrorIs(t, b2.Integrations().Delete(ctx, "never"), bus.ErrNotFound)

	got := make(chan string, 10)
	require.NoError(t, b2.Handle("x", nil, handlerOf(got)))
	rs.publish(b2, "new-1")
	settled(t, b2, "x")
	assert.Equal(t, []string{"new-1"}, drain(got), "registered again, x starts at the head")

	// A running handler goes, with its cursor; an integration of another
	// type is not Unhandle's.
	require.NoError(t, b2.Unhandle("x"))
	_, err := b2.Integrations().Get(ctx, "x")
	assert.ErrorIs(t, err, bus.ErrNotFound)
	_, ok := b2.Events().Cursor("x")
	assert.False(t, ok)
	_, err = b2.Integrations().Create(ctx, bus.Integration{ID: "erp", Sink: bustest.NewSink()})
	require.NoError(t, err)
	assert.ErrorIs(t, b2.Unhandle("erp"), bus.ErrNotFound)
	_, err = b2.Integrations().Get(ctx, "erp")
	assert.NoError(t, err, "still there")
}
