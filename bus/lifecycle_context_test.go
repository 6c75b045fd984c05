package bus_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/replay"
)

// Every management call refuses a context that is already done.
func TestIntegrations_refuse_a_done_context(t *testing.T) {
	tb := lifecycleBus(t)
	tb.Record("order.*")
	in := tb.Create(bus.Integration{ID: "x", Sink: &testSink{name: "x"}})
	done, cancel := context.WithCancel(ctx)
	cancel()
	m := tb.Integrations()
	calls := map[string]func() error{
		"Get":            func() error { _, err := m.Get(done, in.ID); return err },
		"List":           func() error { _, err := m.List(done); return err },
		"Start":          func() error { _, err := m.Start(done, in.ID); return err },
		"Stop":           func() error { _, err := m.Stop(done, in.ID); return err },
		"Update":         func() error { _, err := m.Update(done, in.ID, in); return err },
		"Delete":         func() error { return m.Delete(done, in.ID) },
		"Lag":            func() error { _, err := m.Lag(done, in.ID); return err },
		"Circuit":        func() error { _, err := m.Circuit(done, in.ID); return err },
		"ResetCircuit":   func() error { return m.ResetCircuit(done, in.ID) },
		"Log":            func() error { _, err := m.Log(done, in.ID); return err },
		"Rejected":       func() error { _, err := m.Rejected(done, in.ID); return err },
		"RejectedEvent":  func() error { _, err := m.RejectedEvent(done, in.ID, "e"); return err },
		"DeleteRejected": func() error { return m.DeleteRejected(done, in.ID, "e") },
		"Replay":         func() error { _, err := m.Replay(done, in.ID, replay.Request{}); return err },
	}
	for name, call := range calls {
		assert.ErrorIs(t, call(), context.Canceled, name)
	}
	got, err := m.Get(ctx, in.ID)
	require.NoError(t, err)
	assert.Equal(t, bus.Running, got.Status, "nothing changed")
}

// A call waiting for another change of the same integration gives up when
// its context ends; a stop it began completes in the background, so the
// integration is stopped once its sink has closed, not left half stopped.
func TestIntegrations_wait_for_a_change_ends_with_the_context(t *testing.T) {
	notOnPostgres(t, "a replica builds and closes the sink to check it at creation, and this sink's gate holds every close")
	tb := lifecycleBus(t)
	gate := make(chan struct{})
	closing := make(chan string, 1)
	tb.Create(bus.Integration{ID: "slow", Sink: &testSink{name: "slow", closeGate: gate, closing: closing}})

	stopCtx, cancelStop := context.WithCancel(ctx)
	stopped := make(chan error, 1)
	go func() {
		_, err := tb.Integrations().Stop(stopCtx, "slow")
		stopped <- err
	}()
	require.Equal(t, "slow", <-closing, "the stop is under way")

	// Another change waits for it, until its context ends.
	waitCtx, cancelWait := context.WithCancel(ctx)
	waited := make(chan error, 1)
	go func() {
		_, err := tb.Integrations().Start(waitCtx, "slow")
		waited <- err
	}()
	cancelWait()
	within(t, "a cancelled wait for the lifecycle lock", func() {
		assert.ErrorIs(t, <-waited, context.Canceled)
	})

	// The stop's own caller gives up; the stop goes on.
	cancelStop()
	within(t, "a cancelled stop", func() {
		assert.ErrorIs(t, <-stopped, context.Canceled)
	})
	close(gate)
	require.Eventually(t, func() bool {
		in, err := tb.Integrations().Get(ctx, "slow")
		return err == nil && in.Status == bus.Stopped
	}, 10*time.Second, time.Millisecond, "the stop completed in the background")
	in, err := tb.Integrations().Start(ctx, "slow")
	require.NoError(t, err)
	assert.Equal(t, bus.Running, in.Status)
}
