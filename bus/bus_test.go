package bus_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/bustest"
	"github.com/sinkbus/sinkbus/filter"
	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/replay"
	"github.com/sinkbus/sinkbus/sinks"
)

var ctx = context.Background()

func names(events []bus.Event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.Name
	}
	sort.Strings(out)
	return out
}

func TestBus_delivers_each_event_to_the_matching_integrations_only(t *testing.T) {
	tb := bustest.New(t)
	orders := tb.Record("order.*")
	carts := tb.Record("cart.updated")
	everything := tb.Record("*")
	paid := tb.NewSinkIntegration(bus.Integration{
		Observes: []string{"order.**"},
		Filter:   filter.Conditions{Payload: json.RawMessage(`{"total": {"$gte": 100}}`)},
	})

	tb.MustPublish(
		bus.Event{Name: "order.created", Payload: json.RawMessage(`{"id":"o1","total":120}`)},
		bus.Event{Name: "order.fulfilled", Payload: json.RawMessage(`{"id":"o1","total":50}`)},
		bus.Event{Name: "cart.updated", Payload: json.RawMessage(`{"id":"c1"}`)},
		bus.Event{Name: "customer.created"},
	)

	assert.Equal(t, []string{"order.created", "order.fulfilled"}, names(orders.WaitFor(t, 2)))
	assert.Equal(t, []string{"cart.updated"}, names(carts.WaitFor(t, 1)))
	assert.Equal(t, []string{"cart.updated", "customer.created", "order.created", "order.fulfilled"}, names(everything.WaitFor(t, 4)))
	assert.Equal(t, []string{"order.created"}, names(paid.WaitFor(t, 1)))

	// Nothing more arrives once the journal is drained.
	waitLag(t, tb, "")
	assert.Len(t, orders.Events(), 2)
	assert.Len(t, carts.Events(), 1)
	assert.Len(t, paid.Events(), 1)
}

func TestBus_event_carries_id_tenant_payload_and_metadata(t *testing.T) {
	tb := bustest.New(t)
	got := tb.Record("order.created")
	tb.MustPublish(bus.Event{ID: "evt-1", Name: "order.created", Tenant: "acme",
		Payload: json.RawMessage(`{"id":"o1"}`), Metadata: map[string]string{"source": "pos"}})
	e := got.WaitFor(t, 1)[0]
	assert.Equal(t, "evt-1", e.ID)
	assert.Equal(t, "acme", e.Tenant)
	assert.JSONEq(t, `{"id":"o1"}`, string(e.Payload))
	assert.Equal(t, map[string]string{"source": "pos"}, e.Metadata)
	assert.Equal(t, tb.Clock.Now().UTC(), e.PublishedAt.UTC())
	assert.Equal(t, "order", e.Entity())
}

func TestBus_Publish_refuses_invalid_events_naming_the_field_and_publishes_none(t *testing.T) {
	tb := bustest.New(t, func(c *bus.Config) { c.MaxPayloadBytes = 64; c.MaxPayloadDepth = 3 })
	got := tb.Record("*")
	err := tb.Bus.Publish(ctx,
		bus.Event{Name: "order.created", Payload: json.RawMessage(`[[[]]]`)},
		bus.Event{Name: ""},
		bus.Event{Name: "order..x"},
		bus.Event{Name: "a.b", Payload: json.RawMessage(`{"unterminated":`)},
		bus.Event{Name: "a.b", Payload: json.RawMessage(`"` + strings.Repeat("x", 100) + `"`)},
		bus.Event{Name: "a.b", Metadata: map[string]string{"sinkbus_name": "x"}},
		bus.Event{Name: "a.b", Payload: json.RawMessage(`{"a":[{"b":[1]}]}`)},
	)
	require.ErrorIs(t, err, bus.ErrInvalidEvent)
	for _, want := range []string{
		"events[1].name: required",
		"events[2].name:",
		"events[3].payload: not valid JSON",
		"events[4].payload: 102 bytes is over the limit of 64",
		"events[5].metadata.sinkbus_name: keys starting with \"sinkbus_\" are reserved",
		"events[6].payload: nests arrays and objects deeper than 3 levels",
	} {
		assert.Contains(t, err.Error(), want)
	}
	assert.NotContains(t, err.Error(), "events[0]")

	tb.MustPublish(bus.Event{Name: "order.created"})
	assert.Equal(t, []string{"order.created"}, names(got.WaitFor(t, 1)))
	waitLag(t, tb, "")
	assert.Len(t, got.Events(), 1, "the invalid batch published nothing")
}

func TestIntegrations_Create_reports_every_problem_with_its_field(t *testing.T) {
	tb := bustest.New(t)
	_, err := tb.Integrations().Create(ctx, bus.Integration{
		ID:          "Bad_ID",
		Observes:    []string{"order.*", "ord*.x", ""},
		Kind:        bus.Temporary,
		Concurrency: -1,
		OrderKey:    "payload.",
		Sink:        bustest.NewSink(),
	})
	require.ErrorIs(t, err, bus.ErrInvalid)
	for _, want := range []string{
		"id: must match ^[a-z0-9-]+$",
		"observes[1]",
		"observes[2]: empty pattern",
		"starts_at: required for a temporary integration",
		"ends_at: required for a temporary integration",
		"concurrency: must be between 0 and 1024",
		"order_key:",
	} {
		assert.Contains(t, err.Error(), want)
	}

	_, err = tb.Integrations().Create(ctx, bus.Integration{Observes: []string{"a"}})
	assert.ErrorContains(t, err, "integration_type: required")

	future := tb.Clock.Now().Add(time.Hour)
	_, err = tb.Integrations().Create(ctx, bus.Integration{Sink: bustest.NewSink(), StartsAt: future})
	assert.ErrorContains(t, err, "starts_at: must not be in the future")

	list, err := tb.Integrations().List(ctx)
	require.NoError(t, err)
	assert.Empty(t, list, "no invalid integration was created")
}

func TestIntegrations_limit_is_enforced(t *testing.T) {
	tb := bustest.New(t, func(c *bus.Config) { c.MaxIntegrations = 2 })
	tb.Record("a")
	tb.Record("b")
	_, err := tb.Integrations().Create(ctx, bus.Integration{Sink: bustest.NewSink()})
	assert.ErrorIs(t, err, bus.ErrLimit)
	_, err = tb.Integrations().Create(ctx, bus.Integration{ID: "x", Sink: bustest.NewSink()})
	assert.ErrorIs(t, err, bus.ErrLimit)
}

func TestIntegrations_duplicate_id_is_refused(t *testing.T) {
	tb := bustest.New(t)
	tb.Create(bus.Integration{ID: "erp-1", Sink: bustest.NewSink()})
	_, err := tb.Integrations().Create(ctx, bus.Integration{ID: "erp-1", Sink: bustest.NewSink()})
	assert.ErrorIs(t, err, bus.ErrExists)
}

func TestIntegrations_stopped_integration_catches_up_on_start(t *testing.T) {
	tb := bustest.New(t)
	sink := bustest.NewSink()
	in := tb.Create(bus.Integration{ID: "erp", Observes: []string{"order.*"}, Sink: sink})
	tb.MustPublish(bus.Event{Name: "order.created"})
	sink.WaitFor(t, 1)

	_, err := tb.Integrations().Stop(ctx, in.ID)
	require.NoError(t, err)
	tb.Clock.Advance(24 * time.Hour)
	for i := range 5 {
		tb.MustPublish(bus.Event{Name: "order.fulfilled", Payload: json.RawMessage(fmt.Sprint(i))})
	}
	lag, err := tb.Integrations().Lag(ctx, in.ID)
	require.NoError(t, err)
	assert.Equal(t, uint64(5), lag, "the stopped integration waits in the journal")
	assert.Len(t, sink.Events(), 1)

	got, err := tb.Integrations().Start(ctx, in.ID)
	require.NoError(t, err)
	assert.Equal(t, bus.Running, got.Status)
	events := sink.WaitFor(t, 6)
	assert.Len(t, events, 6)

	entries, err := tb.Integrations().Log(ctx, in.ID)
	require.NoError(t, err)
	var actions []string
	for _, e := range entries {
		actions = append(actions, e.Action)
	}
	assert.Contains(t, actions, middleware.ActionIntegrationStopped)
	assert.Contains(t, actions, middleware.ActionIntegrationStarted)
}

func TestIntegrations_update_takes_effect_without_losing_events(t *testing.T) {
	tb := bustest.New(t)
	sink := bustest.NewSink()
	tb.Create(bus.Integration{ID: "erp", Observes: []string{"order.created"}, Sink: sink})
	other := tb.Record("*")
	_, err := tb.Integrations().UpdateFunc(ctx, "erp", func(in *bus.Integration) error {
		in.Name, in.Observes = "ERP", []string{"order.fulfilled"}
		return nil
	})
	require.NoError(t, err)
	tb.MustPublish(bus.Event{Name: "order.created"}, bus.Event{Name: "order.fulfilled"})
	assert.Equal(t, []string{"order.fulfilled"}, names(sink.WaitFor(t, 1)))
	assert.Len(t, other.WaitFor(t, 2), 2)

	got, err := tb.Integrations().Get(ctx, "erp")
	require.NoError(t, err)
	assert.Equal(t, "ERP", got.Name)

	_, err = tb.Integrations().Update(ctx, "erp", bus.Integration{Kind: bus.Temporary})
	assert.ErrorIs(t, err, bus.ErrImmutable)
	_, err = tb.Integrations().Update(ctx, "nope", bus.Integration{})
	assert.ErrorIs(t, err, bus.ErrNotFound)
}

func TestIntegrations_delete_removes_everything(t *testing.T) {
	tb := bustest.New(t)
	tb.Create(bus.Integration{ID: "erp", Sink: bustest.NewSink()})
	require.NoError(t, tb.Integrations().Delete(ctx, "erp"))
	_, err := tb.Integrations().Get(ctx, "erp")
	assert.ErrorIs(t, err, bus.ErrNotFound)
	_, ok := tb.Events().Cursor("erp")
	assert.False(t, ok)
	_, err = tb.Integrations().Log(ctx, "erp")
	assert.ErrorIs(t, err, bus.ErrNotFound)
}

func TestHandle_routes_events_to_go_functions_with_the_sink_failure_rules(t *testing.T) {
	tb := bustest.New(t)
	var mu sync.Mutex
	var seen []string
	done := make(chan struct{}, 10)
	require.NoError(t, tb.Handle("mailer", []string{"order.*"}, func(ctx context.Context, e bus.Event) error {
		mu.Lock()
		seen = append(seen, e.Name)
		mu.Unlock()
		defer func() { done <- struct{}{} }()
		if e.Name == "order.cancelled" {
			return sinks.Permanent(errors.New("no template for cancelled orders"))
		}
		return nil
	}))
	tb.MustPublish(bus.Event{Name: "order.created"}, bus.Event{ID: "c-1", Name: "order.cancelled"}, bus.Event{Name: "cart.updated"})
	<-done
	<-done
	waitLag(t, tb, "mailer")
	mu.Lock()
	sort.Strings(seen)
	assert.Equal(t, []string{"order.cancelled", "order.created"}, seen)
	mu.Unlock()

	rejected, err := tb.Integrations().Rejected(ctx, "mailer")
	require.NoError(t, err)
	require.Len(t, rejected, 1)
	assert.Equal(t, "c-1", rejected[0].EventID)
	assert.Contains(t, rejected[0].Reason, "no template for cancelled orders")
}

func TestHandle_retryable_error_is_retried_after_backoff(t *testing.T) {
	tb := bustest.New(t)
	sink := tb.NewSinkIntegration(bus.Integration{Observes: []string{"order.created"}})
	sink.FailNext(1, 503)
	tb.MustPublish(bus.Event{Name: "order.created"})
	require.NoError(t, tb.Clock.BlockUntil(waitCtx(t), 1), "the retry waits on the clock")
	tb.Clock.Advance(time.Minute)
	sink.WaitFor(t, 1)
	assert.Equal(t, 2, sink.Attempts())
}

func TestIntegration_order_key_keeps_each_key_in_order_and_lets_others_pass(t *testing.T) {
	tb := bustest.New(t)
	release := make(chan struct{})
	var mu sync.Mutex
	byKey := map[string][]int{}
	otherDone := make(chan struct{}, 100)
	require.NoError(t, tb.Handle("ordered", []string{"order.*"}, func(ctx context.Context, e bus.Event) error {
		var p struct {
			OrderID string `json:"order_id"`
			N       int    `json:"n"`
		}
		require.NoError(t, json.Unmarshal(e.Payload, &p))
		if p.OrderID == "slow" && p.N == 0 {
			<-release // the first event of "slow" holds its key
		}
		mu.Lock()
		byKey[p.OrderID] = append(byKey[p.OrderID], p.N)
		mu.Unlock()
		if p.OrderID != "slow" {
			otherDone <- struct{}{}
		}
		return nil
	}, func(in *bus.Integration) { in.OrderKey = "payload.order_id"; in.Concurrency = 4 }))

	var events []bus.Event
	for n := range 5 {
		for _, k := range []string{"slow", "a", "b"} {
			events = append(events, bus.Event{Name: "order.updated", Payload: json.RawMessage(fmt.Sprintf(`{"order_id":%q,"n":%d}`, k, n))})
		}
	}
	tb.MustPublish(events...)
	for range 10 {
		<-otherDone // every event of a and b arrives while slow is held
	}
	mu.Lock()
	assert.Empty(t, byKey["slow"])
	mu.Unlock()
	close(release)
	waitLag(t, tb, "ordered")
	mu.Lock()
	defer mu.Unlock()
	for _, k := range []string{"slow", "a", "b"} {
		assert.Equal(t, []int{0, 1, 2, 3, 4}, byKey[k], "key %s in order", k)
	}
}

func TestIntegrations_Replay_delivers_the_range_again_marked_replayed(t *testing.T) {
	tb := bustest.New(t)
	sink := tb.NewSinkIntegration(bus.Integration{ID: "erp", Observes: []string{"order.*"}})
	start := tb.Clock.Now()
	tb.MustPublish(bus.Event{Name: "order.created", ID: "before"})
	tb.Clock.Advance(time.Hour)
	tb.MustPublish(bus.Event{Name: "order.created", ID: "in-1"}, bus.Event{Name: "cart.updated", ID: "in-cart"}, bus.Event{Name: "order.fulfilled", ID: "in-2"})
	tb.Clock.Advance(time.Hour)
	tb.MustPublish(bus.Event{Name: "order.created", ID: "after"})
	sink.WaitFor(t, 4)

	req := replay.Request{From: start.Add(30 * time.Minute), To: start.Add(90 * time.Minute)}
	dry := req
	dry.DryRun = true
	job, err := tb.Integrations().Replay(ctx, "erp", dry)
	require.NoError(t, err)
	assert.Equal(t, 2, job.Matched)
	assert.Nil(t, job.Done)

	assert.Equal(t, 2, replayAndWait(t, tb, "erp", req).Matched)
	events := sink.WaitFor(t, 6)
	var replayed []string
	for _, e := range events[4:] {
		replayed = append(replayed, e.ID)
	}
	sort.Strings(replayed)
	assert.Equal(t, []string{"in-1", "in-2"}, replayed)
}

func TestIntegrations_Replay_without_an_end_covers_what_is_published_and_ends_on_a_still_clock(t *testing.T) {
	tb := bustest.New(t) // its clock never moves by itself
	sink := tb.NewSinkIntegration(bus.Integration{ID: "erp", Observes: []string{"order.*"}})
	tb.MustPublish(bus.Event{Name: "order.created", ID: "a"}, bus.Event{Name: "order.created", ID: "b"})
	sink.WaitFor(t, 2)

	assert.Equal(t, 2, replayAndWait(t, tb, "erp", replay.Request{}).Matched)
	events := sink.WaitFor(t, 4)
	replayed := []string{events[2].ID, events[3].ID}
	sort.Strings(replayed)
	assert.Equal(t, []string{"a", "b"}, replayed)

	tb.MustPublish(bus.Event{Name: "order.created", ID: "later"})
	sink.WaitFor(t, 5)
	waitLag(t, tb, "erp")
	assert.Len(t, sink.Events(), 5, "what was published after the replay ended is delivered once, live")
}

func TestIntegrations_temporary_integration_delivers_its_range_and_stops_itself(t *testing.T) {
	tb := bustest.New(t)
	start := tb.Clock.Now()
	tb.MustPublish(bus.Event{Name: "order.created", ID: "early"})
	tb.Clock.Advance(time.Hour)
	tb.MustPublish(bus.Event{Name: "order.created", ID: "in-range"})
	tb.Clock.Advance(time.Hour)
	tb.MustPublish(bus.Event{Name: "order.created", ID: "late"})

	sink := tb.NewSinkIntegration(bus.Integration{ID: "sap-1", Kind: bus.Temporary,
		StartsAt: start.Add(30 * time.Minute), EndsAt: start.Add(90 * time.Minute)})
	got := sink.WaitFor(t, 1)
	assert.Equal(t, "in-range", got[0].ID)
	require.Eventually(t, func() bool {
		in, err := tb.Integrations().Get(ctx, "sap-1")
		return err == nil && in.Status == bus.Stopped
	}, 10*time.Second, time.Millisecond)
	entries, err := tb.Integrations().Log(ctx, "sap-1")
	require.NoError(t, err)
	assert.Equal(t, middleware.ActionIntegrationCompleted, entries[0].Action)
	assert.Len(t, sink.Events(), 1)
}

func waitCtx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// waitLag waits until an integration of ref id (every one when id is "")
// has settled every journal event.
func waitLag(t *testing.T, tb *bustest.Bus, id string) {
	t.Helper()
	require.Eventually(t, func() bool {
		list, err := tb.Integrations().List(ctx)
		require.NoError(t, err)
		for _, in := range list {
			if id != "" && in.Ref() != id {
				continue
			}
			if lag, _ := tb.Integrations().Lag(ctx, in.Ref()); lag > 0 && in.Status == bus.Running {
				return false
			}
		}
		return true
	}, 10*time.Second, time.Millisecond)
}

// Integrations created while Run is starting the router, or after it
// returned, must neither panic nor lose events.
func TestBus_create_while_Run_starts_and_after_it_returned(t *testing.T) {
	for i := range 100 {
		b, err := bus.New(bus.Config{})
		require.NoError(t, err)
		runCtx, stop := context.WithCancel(ctx)
		ran := make(chan error, 1)
		go func() { ran <- b.Run(runCtx) }()
		time.Sleep(time.Duration(i%20) * 10 * time.Microsecond) // into Run's start-up, at varying depths
		got := make(chan string, 1)
		require.NoError(t, b.Handle("h", nil, func(_ context.Context, e bus.Event) error {
			got <- e.Name
			return nil
		}))
		require.NoError(t, b.Publish(ctx, bus.Event{Name: "order.created"}))
		select {
		case name := <-got:
			assert.Equal(t, "order.created", name)
		case <-time.After(10 * time.Second):
			t.Fatal("not delivered")
		}
		stop()
		require.NoError(t, <-ran)
		require.NoError(t, b.Handle("late", nil, func(context.Context, bus.Event) error { return nil }),
			"created on a bus whose router has closed")
		require.NoError(t, b.Close())
	}
}

// replayAndWait starts a replay and waits until every event of its range
// is settled.
func replayAndWait(t *testing.T, tb *bustest.Bus, id string, req replay.Request) replay.Job {
	t.Helper()
	job, err := tb.Integrations().Replay(ctx, id, req)
	require.NoError(t, err)
	assert.NoError(t, job.Err(), "under way")
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	require.NoError(t, job.Wait(wctx), "replay did not complete")
	return job
}
