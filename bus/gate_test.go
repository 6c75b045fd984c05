package bus_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/bustest"
	"github.com/sinkbus/sinkbus/replay"
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
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
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
			tb.Publish(events...)
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
