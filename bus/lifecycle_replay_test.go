package bus_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/bustest"
	"github.com/sinkbus/sinkbus/replay"
)

// A replay cut short ends too: Done is closed, Err says it was aborted, and
// so does the log, where the integration still has one.
func TestIntegrations_Replay_aborted_closes_Done_and_says_so(t *testing.T) {
	for _, tc := range []struct {
		name  string
		abort func(tb *bustest.Bus) error
	}{
		{"stop", func(tb *bustest.Bus) error { _, err := tb.Integrations().Stop(ctx, "erp"); return err }},
		{"update", func(tb *bustest.Bus) error {
			_, err := tb.Integrations().UpdateFunc(ctx, "erp", func(in *bus.Integration) error { in.Name = "x"; return nil })
			return err
		}},
		{"delete", func(tb *bustest.Bus) error { return tb.Integrations().Delete(ctx, "erp") }},
		{"close", func(tb *bustest.Bus) error { return tb.Close() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tb := lifecycleBus(t, func(c *bus.Config) { c.StopGrace = -1 })
			replaying := make(chan string, 10)
			require.NoError(t, tb.Handle("erp", nil, func(ctx context.Context, e bus.Event) error {
				if !e.Replayed {
					return nil
				}
				replaying <- e.ID
				<-ctx.Done() // the receiver hangs on replayed events
				return ctx.Err()
			}, func(in *bus.Integration) { in.Concurrency = 1 }))
			tb.MustPublish(bus.Event{ID: "a", Name: "order.created"}, bus.Event{ID: "b", Name: "order.created"})
			settled(t, tb.Bus, "erp")

			job, err := tb.Integrations().Replay(ctx, "erp", replay.Request{})
			require.NoError(t, err)
			assert.Equal(t, 2, job.Matched)
			assert.Equal(t, "a", <-replaying)
			require.NoError(t, tc.abort(tb))
			select {
			case <-job.Done:
			case <-time.After(10 * time.Second):
				t.Fatal("Done not closed")
			}
			assert.ErrorIs(t, job.Err(), replay.ErrAborted)
			assert.ErrorIs(t, job.Wait(ctx), replay.ErrAborted)
			if tc.name == "stop" || tc.name == "update" {
				actions := logActions(t, tb.Bus, "erp")
				assert.Contains(t, actions, bus.ActionReplayAborted)
				assert.NotContains(t, actions, bus.ActionReplayCompleted)
			}
		})
	}
}

// A finished replay lets go of its consumer; the integration does not
// collect them.
func TestIntegrations_Replay_that_finished_is_released(t *testing.T) {
	tb := lifecycleBus(t)
	sink := tb.NewSinkIntegration(bus.Integration{ID: "erp"})
	tb.MustPublish(bus.Event{ID: "a", Name: "order.created"})
	sink.WaitFor(t, 1)
	for i := range 5 {
		replayAndWait(t, tb, "erp", replay.Request{})
		sink.WaitFor(t, 2+i)
	}
	require.Eventually(t, func() bool { return bus.ReplaysUnderWay(tb.Bus, "erp") == 0 },
		10*time.Second, time.Millisecond)
	actions := logActions(t, tb.Bus, "erp")
	completed := 0
	for _, a := range actions {
		if a == bus.ActionReplayCompleted {
			completed++
		}
	}
	assert.Equal(t, 5, completed)
	assert.NotContains(t, actions, bus.ActionReplayAborted)
}

// logReasons returns the reasons of id's log entries of action, newest first.
func logReasons(t *testing.T, b *bus.Bus, id, action string) []string {
	t.Helper()
	entries, err := b.Integrations().Log(ctx, id)
	require.NoError(t, err)
	var out []string
	for _, e := range entries {
		if e.Action == action {
			out = append(out, e.Reason)
		}
	}
	return out
}

func logActions(t *testing.T, b *bus.Bus, id string) []string {
	t.Helper()
	entries, err := b.Integrations().Log(ctx, id)
	require.NoError(t, err)
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = e.Action
	}
	return out
}

// replay_started says how many events the replay will send.
func TestIntegrations_Replay_log_counts_the_matching_events(t *testing.T) {
	tb := lifecycleBus(t)
	sink := tb.NewSinkIntegration(bus.Integration{ID: "erp", Observes: []string{"order.*"}})
	tb.MustPublish(bus.Event{ID: "a", Name: "order.created"})
	sink.WaitFor(t, 1)
	replayAndWait(t, tb, "erp", replay.Request{})
	tb.MustPublish(bus.Event{ID: "b", Name: "order.created"}, bus.Event{ID: "c", Name: "cart.updated"})
	sink.WaitFor(t, 3)
	replayAndWait(t, tb, "erp", replay.Request{})

	started := logReasons(t, tb.Bus, "erp", bus.ActionReplayStarted)
	require.Len(t, started, 2)
	assert.Contains(t, started[0], ": 2 matching events published from ", "newest first")
	assert.Contains(t, started[1], ": 1 matching event published from ")
}

// A replay's log starts with replay_started, whatever how fast it ends: the
// admin page (and anyone reading the log) pairs the end with its start.
func TestIntegrations_Replay_logs_its_start_before_its_end(t *testing.T) {
	tb := lifecycleBus(t)
	sink := tb.NewSinkIntegration(bus.Integration{ID: "erp"})
	tb.MustPublish(bus.Event{ID: "a", Name: "order.created"})
	sink.WaitFor(t, 1)
	for range 20 {
		replayAndWait(t, tb, "erp", replay.Request{})
	}
	entries, err := tb.Integrations().Log(ctx, "erp")
	require.NoError(t, err)
	started := map[string]bool{}
	for i := len(entries) - 1; i >= 0; i-- { // oldest first
		job, _, _ := strings.Cut(entries[i].Reason, ":")
		switch entries[i].Action {
		case bus.ActionReplayStarted:
			started[job] = true
		case bus.ActionReplayCompleted:
			assert.True(t, started[job], "%s completed before it started", job)
		}
	}
	assert.NotEmpty(t, started)
}
