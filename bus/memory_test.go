package bus_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/bustest"
	"github.com/sinkbus/sinkbus/replay"
)

// pad1K is a payload of about 1 KiB.
var pad1K = []byte(`{"pad":"` + strings.Repeat("x", 1000) + `"}`)

// A bus without a DataDir holds MemoryBytes of events. A stopped
// integration's backlog beyond that loses its oldest events; when it
// starts it gets the newest, and its log, the bus's log and the observer
// say how many it lost. An integration that keeps up loses nothing.
func TestBus_in_memory_a_stopped_integration_is_told_how_many_events_the_bound_removed(t *testing.T) {
	logs := newLogRecords()
	tb := bustest.New(t, func(c *bus.Config) {
		c.MemoryBytes = 64 << 10
		c.Logger = slog.New(logs)
	})
	erp := tb.NewSinkIntegration(bus.Integration{ID: "erp", Status: bus.Stopped, Concurrency: 1})
	live := tb.NewSinkIntegration(bus.Integration{ID: "live", Concurrency: 1})
	const total = 200
	var published []string
	for i := range total {
		published = append(published, fmt.Sprintf("e%03d", i))
		tb.MustPublish(bus.Event{ID: published[i], Name: "order.created", Payload: pad1K})
		live.WaitFor(t, i+1)
	}
	assert.Equal(t, published, eventIDs(live.Events()))
	assert.Empty(t, retentionLosses(t, tb.Bus, "live"))

	_, err := tb.Integrations().Start(ctx, "erp")
	require.NoError(t, err)
	settled(t, tb.Bus, "erp")
	got := eventIDs(erp.Events())
	lost := total - len(got)
	assert.Greater(t, lost, total/2, "64 KiB holds about 40 events of 1 KiB")
	assert.Equal(t, published[lost:], got, "the newest, in order")

	losses := retentionLosses(t, tb.Bus, "erp")
	require.Len(t, losses, 1)
	assert.Equal(t, fmt.Sprintf("%d events were removed from the in-memory journal before the integration caught up "+
		"(MemoryBytes 64 KiB, Retention 30 days); a DataDir keeps them on disk.", lost), losses[0])
	lines := logs.lines("Events removed from the journal before delivery")
	assert.Equal(t, []map[string]string{{"level": "ERROR", "integration_id": "erp", "lost": fmt.Sprint(lost)}}, lines, "one error line, for erp")
	logs.mu.Lock()
	defer logs.mu.Unlock()
	for _, r := range *logs.recs {
		assert.True(t, r.Level < slog.LevelError || r.Message == "Events removed from the journal before delivery", r.Message)
	}
}

// Delivered events make room for a stopped integration's backlog: what it
// missed while stopped, within the bound, all arrives, and nothing is
// reported lost although the bus removed many events it had delivered.
func TestBus_in_memory_delivered_events_make_room_for_a_backlog(t *testing.T) {
	tb := bustest.New(t, func(c *bus.Config) { c.MemoryBytes = 64 << 10 })
	live := tb.NewSinkIntegration(bus.Integration{ID: "live", Concurrency: 1})
	for i := range 200 {
		tb.MustPublish(bus.Event{ID: fmt.Sprintf("e%03d", i), Name: "order.created", Payload: pad1K})
		live.WaitFor(t, i+1)
	}
	_, err := tb.Integrations().Stop(ctx, "live")
	require.NoError(t, err)
	require.NoError(t, bus.JournalOf(tb.Bus).Flush())
	for i := range 20 {
		tb.MustPublish(bus.Event{ID: fmt.Sprintf("f%03d", i), Name: "order.created", Payload: pad1K})
	}
	_, err = tb.Integrations().Start(ctx, "live")
	require.NoError(t, err)
	assert.Len(t, live.WaitFor(t, 220)[200:], 20)
	settled(t, tb.Bus, "live")
	assert.Empty(t, retentionLosses(t, tb.Bus, "live"))
}

// A replay on an in-memory bus covers what the journal still holds, and
// says so when it was asked for more: in its job and its log entry.
func TestIntegrations_Replay_in_memory_says_what_the_journal_no_longer_holds(t *testing.T) {
	mem := replay.NewMemoryWith(replay.MemoryConfig{MaxBytes: 64 << 10})
	tb := bustest.New(t, func(c *bus.Config) { c.Storage = mem })
	live := tb.NewSinkIntegration(bus.Integration{ID: "live", Concurrency: 1})
	start := tb.Clock.Now()
	const total = 200
	for i := range total {
		tb.MustPublish(bus.Event{ID: fmt.Sprintf("e%03d", i), Name: "order.created", Payload: pad1K})
		live.WaitFor(t, i+1)
		tb.Clock.Advance(time.Second)
	}
	first, _ := mem.Bounds(bus.Topic)
	held := total - int(first-1)
	oldest := start.Add(time.Duration(first-1) * time.Second)

	// Asked from the first event: it starts at the oldest held.
	job := replayAndWait(t, tb, "live", replay.Request{From: start})
	assert.Equal(t, held, job.Matched)
	assert.True(t, job.Partial)
	assert.Equal(t, oldest, job.From.UTC())
	assert.Zero(t, job.Missing)
	assert.Equal(t, eventIDs(live.Events())[first-1:total], eventIDs(live.WaitFor(t, total+held)[total:]), "the held ones, again")
	started := logReasons(t, tb.Bus, "live", bus.ActionReplayStarted)
	require.Len(t, started, 1)
	assert.Equal(t, fmt.Sprintf("%s: %d matching events published from %s to %s. Asked from %s: the journal no longer holds "+
		"the events published before %s (the in-memory journal holds MemoryBytes of events; a DataDir keeps them for the whole Retention).",
		job.ID, held, oldest.Format(time.RFC3339), job.To.UTC().Format(time.RFC3339), start.UTC().Format(time.RFC3339), oldest.Format(time.RFC3339)),
		started[0])

	// Asked for what it holds: all of it, nothing said.
	dry, err := tb.Integrations().Replay(ctx, "live", replay.Request{From: oldest.Add(time.Second), DryRun: true})
	require.NoError(t, err)
	assert.False(t, dry.Partial)
	assert.Equal(t, held-1, dry.Matched)
	assert.Equal(t, oldest.Add(time.Second), dry.From.UTC())

	// Events delivered everywhere go first when the bound needs room, also
	// from between events a group still waits for: replayed, the range
	// lacks them.
	waitLag(t, tb, "live")
	require.NoError(t, bus.JournalOf(tb.Bus).Flush())
	head := bus.JournalOf(tb.Bus).Head(bus.Topic)
	require.NoError(t, mem.SaveCursors(map[replay.CursorKey]replay.Cursor{
		{Topic: bus.Topic, Group: "waits-for-the-first"}: {Next: first, Acked: []replay.Range{{From: first + 1, To: head}}},
	}))
	for i := range 10 {
		tb.MustPublish(bus.Event{ID: fmt.Sprintf("f%03d", i), Name: "order.created", Payload: pad1K})
	}
	dry, err = tb.Integrations().Replay(ctx, "live", replay.Request{DryRun: true})
	require.NoError(t, err)
	assert.True(t, dry.Partial)
	assert.Greater(t, dry.Missing, 0)
	assert.Equal(t, oldest, dry.From.UTC(), "the first held: the one a group waits for")
	assert.Equal(t, held+10-dry.Missing, dry.Matched)
}

// A zero Config bounds the in-memory journal by the documented default; a
// negative MemoryBytes lifts the bound; a DataDir has none of it.
func TestBus_MemoryBytes_zero_means_the_default_and_negative_no_bound(t *testing.T) {
	for _, tc := range []struct {
		set, want int64
	}{{0, replay.DefaultMemoryBytes}, {-1, -1}, {1 << 20, 1 << 20}} {
		b, err := bus.New(bus.Config{MemoryBytes: tc.set})
		require.NoError(t, err)
		mem, ok := bus.JournalOf(b).Storage().(*replay.Memory)
		require.True(t, ok, "in memory")
		assert.Equal(t, tc.want, mem.MaxBytes(), "MemoryBytes %d", tc.set)
		require.NoError(t, b.Close())
	}
	assert.Equal(t, int64(64<<20), int64(replay.DefaultMemoryBytes))

	b, err := bus.New(bus.Config{DataDir: t.TempDir(), MemoryBytes: 1 << 20})
	require.NoError(t, err)
	_, inMemory := bus.JournalOf(b).Storage().(*replay.Memory)
	assert.False(t, inMemory)
	require.NoError(t, b.Close())
}

// A handler that edits an event's payload in place changes its own copy:
// the journal, the other integrations and a later replay see the event as
// published.
func TestBus_in_memory_a_handler_editing_the_payload_changes_nothing_else(t *testing.T) {
	tb := bustest.New(t)
	edited := make(chan string, 1)
	require.NoError(t, tb.Handle("editor", nil, func(_ context.Context, e bus.Event) error {
		if !e.Replayed {
			copy(e.Payload, `{"total":99}`)
		}
		edited <- string(e.Payload)
		return nil
	}))
	published := tb.Clock.Now()
	tb.MustPublish(bus.Event{ID: "e1", Name: "order.created", Payload: []byte(`{"total":10}`)})
	assert.Equal(t, `{"total":99}`, <-edited)
	settled(t, tb.Bus, "editor")

	later := tb.NewSinkIntegration(bus.Integration{ID: "later", StartsAt: published})
	assert.JSONEq(t, `{"total":10}`, string(later.WaitFor(t, 1)[0].Payload))
	replayAndWait(t, tb, "editor", replay.Request{})
	assert.Equal(t, `{"total":10}`, <-edited, "replayed as published")
}

// An integration created to start from a time the in-memory journal no
// longer holds (a temporary one replays its date range) starts at the
// oldest event held, and its log says so.
func TestIntegrations_Create_with_starts_at_before_what_the_journal_holds_says_so(t *testing.T) {
	tb := bustest.New(t, func(c *bus.Config) { c.MemoryBytes = 32 << 10 })
	start := tb.Clock.Now()
	for i := range 100 {
		tb.MustPublish(bus.Event{ID: fmt.Sprintf("e%03d", i), Name: "order.created", Payload: pad1K})
		tb.Clock.Advance(time.Second)
	}
	first, _ := bus.JournalOf(tb.Bus).Storage().Bounds(bus.Topic)
	oldest := start.Add(time.Duration(first-1) * time.Second)

	sink := tb.NewSinkIntegration(bus.Integration{ID: "range", Kind: bus.Temporary,
		StartsAt: start, EndsAt: tb.Clock.Now(), Concurrency: 1})
	got := sink.WaitFor(t, 100-int(first-1))
	assert.Equal(t, fmt.Sprintf("e%03d", first-1), got[0].ID)
	created := logReasons(t, tb.Bus, "range", "integration_created")
	require.Len(t, created, 1)
	assert.Equal(t, fmt.Sprintf("Created via API. starts_at %s: the journal no longer holds the events published before; "+
		"the integration starts at %s, the oldest event it holds.", start.UTC().Format(time.RFC3339), oldest.UTC().Format(time.RFC3339)), created[0])

	tb.NewSinkIntegration(bus.Integration{ID: "held", StartsAt: oldest})
	assert.Equal(t, []string{"Created via API."}, logReasons(t, tb.Bus, "held", "integration_created"))
}
