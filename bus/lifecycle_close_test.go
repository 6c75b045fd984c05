package bus_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/bustest"
)

// A sink that takes long to close holds up only its own integration: the
// management calls of the others, and Publish, go on meanwhile.
func TestIntegrations_Stop_of_a_slow_closing_sink_blocks_nobody_else(t *testing.T) {
	notOnPostgres(t, "a replica builds and closes the sink to check it at creation, and this sink's gate holds every close")
	tb := lifecycleBus(t)
	gate := make(chan struct{})
	closing := make(chan string, 1)
	tb.Create(bus.Integration{ID: "slow", Sink: &testSink{name: "slow", closeGate: gate, closing: closing}})
	other := tb.NewSinkIntegration(bus.Integration{ID: "other"})

	stopped := make(chan error, 1)
	go func() {
		_, err := tb.Integrations().Stop(ctx, "slow")
		stopped <- err
	}()
	require.Equal(t, "slow", <-closing)

	within(t, "management calls while a sink closes", func() {
		_, err := tb.Integrations().List(ctx)
		assert.NoError(t, err)
		_, err = tb.Integrations().Get(ctx, "slow")
		assert.NoError(t, err)
		tb.Create(bus.Integration{ID: "new", Sink: bustest.NewSink()})
		_, err = tb.Integrations().Stop(ctx, "other")
		assert.NoError(t, err)
		_, err = tb.Integrations().Start(ctx, "other")
		assert.NoError(t, err)
		assert.NoError(t, tb.Integrations().Delete(ctx, "new"))
		tb.MustPublish(bus.Event{ID: "e1", Name: "order.created"})
	})
	assert.Equal(t, []string{"e1"}, eventIDs(other.WaitFor(t, 1)))
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned (%v) before its sink closed", err)
	default:
	}
	close(gate)
	require.NoError(t, <-stopped)
}

// Close stops the integrations at once, not one after the other: each of
// these sinks finishes closing only when the other has begun to.
func TestBus_Close_stops_integrations_concurrently(t *testing.T) {
	b, err := bus.New(bus.Config{Sinks: lifecycleRegistry(t), CloseTimeout: time.Minute})
	require.NoError(t, err)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- b.Run(runCtx) }()
	<-b.Running()

	closing := make(chan string, 2)
	gate := make(chan struct{})
	for _, id := range []string{"a", "b"} {
		_, err := b.Integrations().Create(ctx, bus.Integration{ID: id, Sink: &testSink{name: id, closeGate: gate, closing: closing}})
		require.NoError(t, err)
	}
	closed := make(chan error, 1)
	go func() { closed <- b.Close() }()
	<-closing
	<-closing // both close at once: sequential stops would wait here for a minute
	close(gate)
	require.NoError(t, <-closed)
	require.NoError(t, <-ran)
}

// Close is bounded by CloseTimeout: a sink that never finishes closing is
// named in the error, and Close returns.
func TestBus_Close_gives_up_on_a_sink_after_CloseTimeout(t *testing.T) {
	b, err := bus.New(bus.Config{Sinks: lifecycleRegistry(t), CloseTimeout: 50 * time.Millisecond})
	require.NoError(t, err)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _ = b.Run(runCtx) }()
	<-b.Running()
	gate := make(chan struct{})
	defer close(gate)
	_, err = b.Integrations().Create(ctx, bus.Integration{ID: "stuck", Sink: &testSink{closeGate: gate}})
	require.NoError(t, err)
	_, err = b.Integrations().Create(ctx, bus.Integration{ID: "fine", Sink: bustest.NewSink()})
	require.NoError(t, err)
	within(t, "Close", func() {
		err = b.Close()
	})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "stuck")
	assert.NotContains(t, err.Error(), "fine")
}

// A bus runs once.
func TestBus_Run_twice_returns_ErrAlreadyRunning(t *testing.T) {
	b, err := bus.New(bus.Config{})
	require.NoError(t, err)
	defer b.Close()
	runCtx, cancel := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- b.Run(runCtx) }()
	<-b.Running()
	assert.ErrorIs(t, b.Run(ctx), bus.ErrAlreadyRunning)
	cancel()
	require.NoError(t, <-ran)
	assert.ErrorIs(t, b.Run(ctx), bus.ErrAlreadyRunning, "after it returned too")
	require.NoError(t, b.Close())
	assert.ErrorIs(t, b.Run(ctx), bus.ErrClosed)
}

// A Create of an id being deleted does not lose its cursor or log to the
// Delete: while the Delete removes what the old integration left, the id
// is still taken (ErrExists); once it returns, the id is free.
func TestIntegrations_Create_while_Delete_removes_the_old_state(t *testing.T) {
	tb := lifecycleBus(t)
	tb.Create(bus.Integration{ID: "x", Sink: &testSink{}})
	entered, release := bus.HoldNextLogDrop(tb.Bus)
	deleted := make(chan error, 1)
	go func() { deleted <- tb.Integrations().Delete(ctx, "x") }()
	<-entered // the Delete is removing the log of the old "x"
	_, err := tb.Integrations().Create(ctx, bus.Integration{ID: "x", Sink: &testSink{}})
	release()
	require.NoError(t, <-deleted)
	if err == nil {
		// Created in between: it must keep what it has.
		_, ok := tb.Events().Cursor("x")
		assert.True(t, ok, "the new integration keeps its cursor")
		assert.Contains(t, logActions(t, tb.Bus, "x"), "integration_created", "the new integration keeps its log")
		return
	}
	require.ErrorIs(t, err, bus.ErrExists, "refused while the Delete is under way")
	tb.Create(bus.Integration{ID: "x", Sink: &testSink{}})
	assert.Contains(t, logActions(t, tb.Bus, "x"), "integration_created")
}

// Integrations started while the bus stops (Run's context ends, or Close)
// never add a handler to a router that is waiting for its last one:
// Watermill's router panics on that ("WaitGroup is reused"), or races.
// Found on PostgreSQL, where a replica's round starts what it takes while
// the bus stops.
func TestBus_stopping_while_integrations_start_is_clean(t *testing.T) {
	for round := range 20 {
		b, err := bus.New(bus.Config{Sinks: lifecycleRegistry(t)})
		require.NoError(t, err)
		runCtx, cancel := context.WithCancel(ctx)
		ran := make(chan error, 1)
		go func() { ran <- b.Run(runCtx) }()
		<-b.Running()
		for i := range 8 {
			_, err := b.Integrations().Create(ctx, bus.Integration{ID: fmt.Sprintf("i%d", i), Sink: &testSink{},
				Status: bus.Stopped})
			require.NoError(t, err)
		}
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				for range 50 {
					_, _ = b.Integrations().Start(ctx, fmt.Sprintf("i%d", i))
					_, _ = b.Integrations().Stop(ctx, fmt.Sprintf("i%d", i))
				}
			})
		}
		if round%2 == 0 {
			cancel()
			require.NoError(t, <-ran)
		}
		require.NoError(t, b.Close())
		wg.Wait()
		cancel()
	}
}
