package bus_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/bustest"
	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/replay"
)

// retention is short so that the journal's own compaction, which runs on the
// wall clock every Retention/10, happens during a test; the fake clock alone
// decides which events are old.
const retention = time.Second

// waitTrimmed waits until the journal's oldest event is at offset first.
func waitTrimmed(t *testing.T, b *bus.Bus, first uint64) {
	t.Helper()
	require.Eventually(t, func() bool {
		got, _ := b.Events().Bounds()
		return got == first
	}, 10*time.Second, time.Millisecond, "compaction removes what the retention window left behind")
}

func ids(events []bus.Event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.ID
	}
	return out
}

// retentionLosses returns the reasons of the retention_loss entries of an
// integration's log.
func retentionLosses(t *testing.T, b *bus.Bus, id string) []string {
	t.Helper()
	entries, err := b.Integrations().Log(ctx, id)
	require.NoError(t, err)
	var out []string
	for _, e := range entries {
		if e.Action == middleware.ActionRetentionLoss {
			out = append(out, e.Reason)
		}
	}
	return out
}

func TestIntegrations_stopped_past_retention_logs_the_loss_and_resumes_at_the_oldest_retained_event(t *testing.T) {
	tb := bustest.New(t, func(c *bus.Config) { c.Retention = retention })
	// One at a time, so that the order of delivery is the journal's.
	erp := tb.NewSinkIntegration(bus.Integration{ID: "erp", Observes: []string{"order.*"}, Concurrency: 1})
	live := tb.NewSinkIntegration(bus.Integration{ID: "live", Observes: []string{"order.*"}})
	tb.MustPublish(bus.Event{ID: "seen", Name: "order.created"}) // offset 1
	erp.WaitFor(t, 1)
	waitLag(t, tb, "erp")
	_, err := tb.Integrations().Stop(ctx, "erp")
	require.NoError(t, err)

	for i := range 3 { // offsets 2-4
		tb.MustPublish(bus.Event{ID: fmt.Sprint("lost-", i), Name: "order.created"})
	}
	waitLag(t, tb, "live") // it has them before compaction can remove them
	tb.Clock.Advance(2 * retention)
	tb.MustPublish(bus.Event{ID: "kept-0", Name: "order.created"}, bus.Event{ID: "kept-1", Name: "order.fulfilled"}) // 5, 6
	waitTrimmed(t, tb.Bus, 5)
	lag, err := tb.Integrations().Lag(ctx, "erp")
	require.NoError(t, err)
	assert.Equal(t, uint64(2), lag, "only retained events wait")

	_, err = tb.Integrations().Start(ctx, "erp")
	require.NoError(t, err)
	assert.Equal(t, []string{"seen", "kept-0", "kept-1"}, ids(erp.WaitFor(t, 3)))
	waitLag(t, tb, "erp")
	assert.Len(t, erp.Events(), 3, "the removed events never arrive")
	losses := retentionLosses(t, tb.Bus, "erp")
	if assert.Len(t, losses, 1) {
		assert.True(t, strings.HasPrefix(losses[0], "3 events "), "the entry counts the removed events: %q", losses[0])
	}

	// An integration that kept up lost nothing, and is told nothing.
	assert.Len(t, live.WaitFor(t, 6), 6)
	assert.Empty(t, retentionLosses(t, tb.Bus, "live"))
}

func TestIntegrations_events_past_retention_cannot_be_replayed_or_started_from(t *testing.T) {
	tb := bustest.New(t, func(c *bus.Config) { c.Retention = retention })
	start := tb.Clock.Now()
	tb.MustPublish(bus.Event{ID: "old-0", Name: "order.created"}, bus.Event{ID: "old-1", Name: "order.created"})
	tb.Clock.Advance(2 * retention)
	tb.MustPublish(bus.Event{ID: "new-0", Name: "order.created"}, bus.Event{ID: "new-1", Name: "order.created"})
	waitTrimmed(t, tb.Bus, 3)

	// Asked for everything since before the old events, both get only what
	// is retained, and no loss: they had no cursor in the removed range.
	sink := tb.NewSinkIntegration(bus.Integration{ID: "erp", Observes: []string{"order.*"}, Concurrency: 1,
		StartsAt: start.Add(-time.Hour)})
	assert.Equal(t, []string{"new-0", "new-1"}, ids(sink.WaitFor(t, 2)))

	// An explicit To in the past: a replay up to "now" ends only once the
	// fake clock has moved past it.
	tb.Clock.Advance(time.Millisecond)
	req := replay.Request{From: start.Add(-time.Hour), To: tb.Clock.Now()}
	dry := req
	dry.DryRun = true
	job, err := tb.Integrations().Replay(ctx, "erp", dry)
	require.NoError(t, err)
	assert.Equal(t, 2, job.Matched)
	assert.Equal(t, 2, replayAndWait(t, tb, "erp", req).Matched)
	assert.Equal(t, []string{"new-0", "new-1", "new-0", "new-1"}, ids(sink.WaitFor(t, 4)))
	waitLag(t, tb, "erp")
	assert.Len(t, sink.Events(), 4)
	assert.Empty(t, retentionLosses(t, tb.Bus, "erp"))
}

func TestBus_DataDir_retention_removes_events_a_stopped_integration_missed_across_restarts(t *testing.T) {
	dir := t.TempDir()
	clk := bustest.NewClock(time.Time{})
	got := make(chan string, 10)
	open := func() *bus.Bus {
		b := startBus(t, bus.Config{DataDir: dir, Clock: clk, Retention: retention})
		// In-process handlers are registered again at every start and keep
		// their cursor; this one starts stopped.
		err := b.Handle("erp", []string{"order.*"}, func(_ context.Context, e bus.Event) error {
			got <- e.ID
			return nil
		}, func(in *bus.Integration) { in.Status = bus.Stopped })
		require.NoError(t, err)
		return b
	}

	b1 := open()
	require.NoError(t, b1.Publish(ctx, bus.Event{ID: "lost-0", Name: "order.created"}, bus.Event{ID: "lost-1", Name: "order.created"}))
	require.NoError(t, b1.Close())

	clk.Advance(2 * retention)
	b2 := open()
	require.NoError(t, b2.Publish(ctx, bus.Event{ID: "kept-0", Name: "order.created"}))
	waitTrimmed(t, b2, 3)
	_, err := b2.Integrations().Start(ctx, "erp")
	require.NoError(t, err)
	select {
	case id := <-got:
		assert.Equal(t, "kept-0", id)
	case <-time.After(10 * time.Second):
		t.Fatal("the retained event was not delivered")
	}
	require.Eventually(t, func() bool {
		lag, err := b2.Integrations().Lag(ctx, "erp")
		return err == nil && lag == 0
	}, 10*time.Second, time.Millisecond)
	assert.Empty(t, got, "the removed events never arrive")
	losses := retentionLosses(t, b2, "erp")
	if assert.Len(t, losses, 1) {
		assert.True(t, strings.HasPrefix(losses[0], "2 events "), "the entry counts the removed events: %q", losses[0])
	}
	require.NoError(t, b2.Close())

	b3 := open()
	assert.Len(t, retentionLosses(t, b3, "erp"), 1, "the loss stays in the saved log")
}
