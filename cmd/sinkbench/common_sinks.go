package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/cmd/sinkbench/internal/bench"
	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/sinks"
)

// Helpers of the cases that deliver into a real sink (stomp, sqs, file).

// serversHint tells how to get the servers a skipped case needs.
const serversHint = `start the test servers: eval "$(scripts/test-servers.sh start)"`

// delivered is a bus.Observer counting the events a sink acknowledged, so
// that a round of "ours" ends when the sink has taken the last event, not
// when the bus has stored it.
type delivered struct {
	bus.NopObserver
	bench.Counter
	failed  atomic.Int64
	lastErr atomic.Pointer[error]
}

var _ bus.Observer = (*delivered)(nil)

func (d *delivered) Attempted(_ string, a middleware.Attempt) {
	if a.Err != nil {
		d.failed.Add(1)
		d.lastErr.Store(&a.Err)
		return
	}
	d.Hit()
}

// wait waits for done (from Expect), failing the run with what went wrong
// when it takes longer than bench.RoundLimit: a delivery that keeps failing
// would otherwise be retried, and the round wait, for ever.
func (d *delivered) wait(done <-chan struct{}) {
	bench.Wait(done, bench.RoundLimit, func() string {
		s := fmt.Sprintf("%d delivered in all, %d failed attempts", d.Count(), d.failed.Load())
		if last := d.lastErr.Load(); last != nil {
			s += fmt.Sprintf(", last: %v", *last)
		}
		return s
	})
}

// sinkBus runs a bus with a memory journal, as the pipeline and webhook
// cases do, and one integration delivering into sink at the webhook case's
// concurrency. It returns a round of "ours" and the bus's stop function.
func sinkBus(id string, sink sinks.Config) (round func(n int) float64, stop func()) {
	d := &delivered{}
	// The test servers listen on loopback: the sinks ask for it.
	b, stop := bench.RunBus(bus.Config{Retention: -1, MemoryBytes: unboundedMemory, Observer: d, AllowPrivateNetworks: true})
	_, err := b.Integrations().Create(context.Background(), bus.Integration{
		ID: id, Observes: []string{"order.*"}, Concurrency: bench.Concurrency, Sink: sink,
	})
	bench.Must(err)
	round = func(n int) float64 {
		done := d.Expect(int64(n))
		start := time.Now()
		bench.PublishAll(n, func(int) {
			bench.Must(b.Publish(context.Background(), bench.Order))
		})
		d.wait(done)
		return bench.PerSecond(n, time.Since(start))
	}
	return round, stop
}
