package bus_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/bustest"
	"github.com/sinkbus/sinkbus/sinks"
)

// parallel is a handler that counts the deliveries under way and holds
// each until n are under way at once.
type parallel struct {
	n       int
	mu      sync.Mutex
	now     int
	max     int
	reached chan struct{}
	once    sync.Once
}

func newParallel(n int) *parallel { return &parallel{n: n, reached: make(chan struct{})} }

func (p *parallel) handle(ctx context.Context, _ bus.Event) error {
	p.mu.Lock()
	p.now++
	p.max = max(p.max, p.now)
	if p.now >= p.n {
		p.once.Do(func() { close(p.reached) })
	}
	p.mu.Unlock()
	select {
	case <-p.reached:
	case <-ctx.Done():
	}
	p.mu.Lock()
	p.now--
	p.mu.Unlock()
	return ctx.Err()
}

func (p *parallel) waitReached(t *testing.T) {
	t.Helper()
	select {
	case <-p.reached:
	case <-time.After(10 * time.Second):
		p.mu.Lock()
		defer p.mu.Unlock()
		t.Fatalf("at most %d deliveries at once, want %d", p.max, p.n)
	}
}

// By default an integration delivers 8 events at once (Config.Concurrency),
// and as many as Integration.Concurrency says when set; the sink is told.
func TestIntegration_concurrency_defaults_to_eight_and_is_honoured(t *testing.T) {
	for _, tc := range []struct {
		name        string
		concurrency int
		want        int
	}{
		{"default", 0, 8},
		{"set", 3, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tb := lifecycleBus(t)
			p := newParallel(tc.want)
			require.NoError(t, tb.Handle("h", nil, p.handle, func(in *bus.Integration) { in.Concurrency = tc.concurrency }))
			probe := &testSink{}
			tb.Create(bus.Integration{ID: "probe", Concurrency: tc.concurrency, Sink: probe})
			events := make([]bus.Event, 3*tc.want)
			for i := range events {
				events[i] = bus.Event{Name: "order.created"}
			}
			tb.MustPublish(events...)
			p.waitReached(t)
			settled(t, tb.Bus, "h")
			p.mu.Lock()
			assert.Equal(t, tc.want, p.max, "never more than the concurrency at once")
			p.mu.Unlock()
			probe.mu.Lock()
			defer probe.mu.Unlock()
			assert.Equal(t, tc.want, probe.envs[0].Concurrency)
		})
	}
}

// Starting, stopping, updating, creating and deleting integrations while
// events are published loses and duplicates nothing for the others, and
// the integration that changes misses nothing.
func TestIntegrations_lifecycle_while_publishing_loses_nothing(t *testing.T) {
	tb := lifecycleBus(t, func(c *bus.Config) { c.Clock = nil })
	other := tb.NewSinkIntegration(bus.Integration{ID: "other"})
	churned := tb.NewSinkIntegration(bus.Integration{ID: "churned"})

	const rounds, perRound = 30, 10
	const n = rounds * perRound
	for round := range rounds {
		// Each round publishes while the churned integration stops, starts
		// and changes, and another one comes and goes.
		published := make(chan struct{})
		go func() {
			defer close(published)
			for i := range perRound {
				id := fmt.Sprintf("e-%03d", round*perRound+i)
				if err := tb.Bus.Publish(ctx, bus.Event{ID: id, Name: "order.created"}); err != nil {
					t.Errorf("publish: %v", err)
					return
				}
			}
		}()
		_, err := tb.Integrations().Stop(ctx, "churned")
		require.NoError(t, err)
		_, err = tb.Integrations().Start(ctx, "churned")
		require.NoError(t, err)
		_, err = tb.Integrations().UpdateFunc(ctx, "churned", func(in *bus.Integration) error {
			in.Name = fmt.Sprint("round ", round)
			return nil
		})
		require.NoError(t, err)
		tmp := fmt.Sprint("tmp-", round)
		tb.Create(bus.Integration{ID: tmp, Sink: bustest.NewSink()})
		require.NoError(t, tb.Integrations().Delete(ctx, tmp))
		<-published
	}
	settled(t, tb.Bus, "other")
	settled(t, tb.Bus, "churned")

	want := make([]string, n)
	for i := range want {
		want[i] = fmt.Sprintf("e-%03d", i)
	}
	assert.Equal(t, want, sortedIDs(other.Events()), "every event once")
	seen := map[string]bool{}
	for _, id := range eventIDs(churned.Events()) {
		seen[id] = true
	}
	assert.Len(t, seen, n, "every event at least once")
}

// An order key whose events keep failing waits alone: the other keys of
// the integration are delivered in full meanwhile.
func TestIntegration_a_failing_order_key_leaves_the_other_keys_alone(t *testing.T) {
	tb := lifecycleBus(t)
	var mu sync.Mutex
	byKey := map[string][]int{}
	badAttempts := 0
	require.NoError(t, tb.Handle("ordered", nil, func(_ context.Context, e bus.Event) error {
		var p struct {
			Key string `json:"order_id"`
			N   int    `json:"n"`
		}
		if err := json.Unmarshal(e.Payload, &p); err != nil {
			return sinks.Permanent(err)
		}
		mu.Lock()
		defer mu.Unlock()
		if p.Key == "bad" {
			badAttempts++
			return &sinks.StatusError{Destination: "erp", StatusCode: 503} // retried on the fake clock, which stands still
		}
		byKey[p.Key] = append(byKey[p.Key], p.N)
		return nil
	}, func(in *bus.Integration) { in.OrderKey = "payload.order_id" }))

	var events []bus.Event
	for n := range 5 {
		for _, k := range []string{"bad", "a", "b"} {
			events = append(events, bus.Event{Name: "order.updated", Payload: json.RawMessage(fmt.Sprintf(`{"order_id":%q,"n":%d}`, k, n))})
		}
	}
	tb.MustPublish(events...)
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		// The bad key's first attempt runs beside the others: it may come last.
		return len(byKey["a"]) == 5 && len(byKey["b"]) == 5 && badAttempts > 0
	}, 10*time.Second, time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []int{0, 1, 2, 3, 4}, byKey["a"])
	assert.Equal(t, []int{0, 1, 2, 3, 4}, byKey["b"])
	assert.Equal(t, 1, badAttempts, "the bad key's first event waits for its retry; the rest wait behind it")
}

// Publish never waits for an integration, even one stuck on every event.
func TestBus_Publish_returns_while_an_integration_is_stuck(t *testing.T) {
	tb := lifecycleBus(t, func(c *bus.Config) { c.StopGrace = -1 })
	stuck := make(chan struct{})
	defer close(stuck)
	arrived := make(chan struct{}, 1)
	require.NoError(t, tb.Handle("stuck", nil, func(ctx context.Context, _ bus.Event) error {
		select {
		case arrived <- struct{}{}:
		default:
		}
		select {
		case <-stuck:
		case <-ctx.Done():
		}
		return ctx.Err()
	}))
	other := tb.Record("*")
	tb.MustPublish(bus.Event{Name: "order.created"})
	<-arrived
	within(t, "Publish", func() {
		for range 100 {
			tb.MustPublish(bus.Event{Name: "order.created"})
		}
		_, err := tb.Integrations().List(ctx)
		assert.NoError(t, err)
	})
	other.WaitFor(t, 101)
}
