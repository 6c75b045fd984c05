package bus_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/bustest"
	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/replay"
	"github.com/sinkbus/sinkbus/sinks"
)

// A replay delivers beside live delivery without adding to it: the
// integration's concurrency, and its one-in-flight-per-key order, hold
// across both.
func TestIntegrations_Replay_shares_concurrency_and_order_with_live_delivery(t *testing.T) {
	for _, tc := range []struct {
		name        string
		concurrency int
		orderKey    string
		want        int32 // deliveries in flight at most
	}{
		{"concurrency", 2, "", 2},
		{"order key", 4, "tenant", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tb := bustest.New(t)
			var inFlight, most, delivered atomic.Int32
			hold := make(chan struct{})
			require.NoError(t, tb.Handle("erp", nil, func(ctx context.Context, e bus.Event) error {
				n := inFlight.Add(1)
				defer inFlight.Add(-1)
				raise(&most, n)
				if !e.Replayed {
					<-hold // live deliveries hang until the replay is under way
				}
				delivered.Add(1)
				return nil
			}, func(in *bus.Integration) { in.Concurrency, in.OrderKey = tc.concurrency, tc.orderKey }))

			events := []bus.Event{{ID: "a"}, {ID: "b"}, {ID: "c"}, {ID: "d"}}
			for i := range events {
				events[i].Name, events[i].Tenant = "order.created", "acme"
			}
			tb.MustPublish(events...)
			require.Eventually(t, func() bool { return inFlight.Load() == tc.want }, 10*time.Second, time.Millisecond)

			job, err := tb.Integrations().Replay(ctx, "erp", replay.Request{})
			require.NoError(t, err)
			require.Equal(t, len(events), job.Matched)
			require.Never(t, func() bool { return inFlight.Load() > tc.want }, 200*time.Millisecond, time.Millisecond,
				"replayed events must wait for the live ones")
			close(hold)

			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			require.NoError(t, job.Wait(wctx))
			require.Eventually(t, func() bool { return delivered.Load() == int32(2*len(events)) }, 10*time.Second, time.Millisecond)
			assert.Equal(t, tc.want, most.Load())
		})
	}
}

// A manual retry of a rejected event waits for a slot like any delivery.
func TestIntegrations_RetryRejected_keeps_the_concurrency(t *testing.T) {
	tb := bustest.New(t)
	var inFlight, most atomic.Int32
	var failed atomic.Bool
	hold := make(chan struct{})
	require.NoError(t, tb.Handle("erp", nil, func(ctx context.Context, e bus.Event) error {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		raise(&most, n)
		switch {
		case e.ID == "bad" && !failed.Swap(true):
			return sinks.Permanent(errors.New("422 unprocessable"))
		case e.ID == "slow":
			<-hold
		}
		return nil
	}, func(in *bus.Integration) { in.Concurrency = 1 }))
	tb.MustPublish(bus.Event{ID: "bad", Name: "order.created"})
	require.Eventually(t, func() bool {
		l, err := tb.Integrations().Rejected(ctx, "erp")
		return err == nil && len(l) == 1
	}, 10*time.Second, time.Millisecond)
	tb.MustPublish(bus.Event{ID: "slow", Name: "order.created"})
	require.Eventually(t, func() bool { return inFlight.Load() == 1 }, 10*time.Second, time.Millisecond)

	retried := make(chan error, 1)
	go func() { retried <- tb.Integrations().RetryRejected(ctx, "erp", "bad") }()
	select {
	case err := <-retried:
		t.Fatalf("the retry did not wait for the delivery in flight: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(hold)
	require.NoError(t, <-retried)
	assert.Equal(t, int32(1), most.Load())
}

// raise sets most to n if n is more.
func raise(most *atomic.Int32, n int32) {
	for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
	}
}

// A manual retry never overlaps a live delivery of its key, circuit closed
// or not: with the key busy and the circuit open (even due for a probe), it
// answers ErrCircuitOpen at once rather than probe beside the live one.
func TestIntegrations_RetryRejected_with_the_circuit_open_keeps_the_order_key(t *testing.T) {
	tb := bustest.New(t)
	var inFlight, most atomic.Int32 // of tenant acme
	failing := map[string]error{
		"acme-old":   sinks.Permanent(errors.New("422 unprocessable")),
		"globex-old": sinks.Permanent(errors.New("422 unprocessable")),
	}
	var mu sync.Mutex
	hold := make(chan struct{})
	require.NoError(t, tb.Handle("erp", nil, func(ctx context.Context, e bus.Event) error {
		if e.Tenant == "acme" {
			n := inFlight.Add(1)
			defer inFlight.Add(-1)
			raise(&most, n)
		}
		mu.Lock()
		err := failing[e.ID]
		delete(failing, e.ID)
		mu.Unlock()
		if e.ID == "acme-live" {
			<-hold
		}
		return err
	}, func(in *bus.Integration) {
		in.Concurrency = 4
		in.OrderKey = "tenant"
		in.Delivery.Breaker = middleware.BreakerPolicy{WarnAfter: 1, OpenAfter: 1}
	}))
	tb.MustPublish(bus.Event{ID: "acme-old", Tenant: "acme", Name: "order.created"},
		bus.Event{ID: "globex-old", Tenant: "globex", Name: "order.created"})
	require.Eventually(t, func() bool {
		l, err := tb.Integrations().Rejected(ctx, "erp")
		return err == nil && len(l) == 2
	}, 10*time.Second, time.Millisecond)
	tb.MustPublish(bus.Event{ID: "acme-live", Tenant: "acme", Name: "order.created"})
	require.Eventually(t, func() bool { return inFlight.Load() == 1 }, 10*time.Second, time.Millisecond)

	// A manual retry of globex fails and opens the circuit; nothing waits
	// for its probe, and the clock passes the cool-down.
	mu.Lock()
	failing["globex-old"] = errors.New("503 unavailable")
	mu.Unlock()
	require.Error(t, tb.Integrations().RetryRejected(ctx, "erp", "globex-old"))
	st, err := tb.Integrations().Circuit(ctx, "erp")
	require.NoError(t, err)
	require.Equal(t, middleware.StateOpen, st.State)
	tb.Clock.Advance(time.Hour)

	err = tb.Integrations().RetryRejected(ctx, "erp", "acme-old")
	require.ErrorIs(t, err, middleware.ErrCircuitOpen, "acme is busy: no probe beside the live delivery")
	close(hold)
	assert.Equal(t, int32(1), most.Load(), "one acme delivery at a time")
}
