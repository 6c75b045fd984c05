package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/sinks"
)

// Helpers of the cases that deliver into a real sink (stomp, sqs, file).

// serversHint tells how to get the servers a skipped case needs.
const serversHint = `start the test servers: eval "$(scripts/test-servers.sh start)"`

// deliveryTimeout bounds a round of a real sink: a delivery that keeps
// failing would otherwise be retried, and the round wait, for ever.
const deliveryTimeout = 2 * time.Minute

// delivered is a bus.Observer counting the events a sink acknowledged, so
// that a round of "ours" ends when the sink has taken the last event, not
// when the bus has stored it.
type delivered struct {
	bus.NopObserver
	counter
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
	d.hit()
}

// wait waits for done (from expect), failing the run with what went wrong
// when it takes longer than deliveryTimeout.
func (d *delivered) wait(done <-chan struct{}) {
	select {
	case <-done:
	case <-time.After(deliveryTimeout):
		err := fmt.Errorf("round not delivered after %s: %d delivered in all, %d failed attempts", deliveryTimeout, d.n.Load(), d.failed.Load())
		if last := d.lastErr.Load(); last != nil {
			err = fmt.Errorf("%w, last: %w", err, *last)
		}
		must(err)
	}
}

// sinkBus runs a bus with a memory journal, as the pipeline and webhook
// cases do, and one integration delivering into sink at the webhook case's
// concurrency. It returns a round of "ours" and the bus's stop function.
func sinkBus(id string, sink sinks.Config) (round func(n int) float64, stop func()) {
	d := &delivered{}
	b, stop := runBus(bus.Config{Retention: -1, MemoryBytes: unboundedMemory, Observer: d})
	_, err := b.Integrations().Create(context.Background(), bus.Integration{
		ID: id, Observes: []string{"order.*"}, Concurrency: publishers, Sink: sink,
	})
	must(err)
	round = func(n int) float64 {
		done := d.expect(int64(n))
		start := time.Now()
		publishAll(n, func(int) {
			must(b.Publish(context.Background(), bus.Event{Name: "order.created", Payload: payload1K}))
		})
		d.wait(done)
		return perSecond(n, time.Since(start))
	}
	return round, stop
}

// busMessage is an event as the bus hands it to a sink, for the raw sides
// to send the same bytes.
func busMessage() *message.Message {
	msg := message.NewMessage(watermill.NewULID(), []byte(payload1K))
	msg.Metadata.Set(sinks.MetaName, "order.created")
	msg.Metadata.Set(sinks.MetaPublishedAt, time.Now().UTC().Format(time.RFC3339Nano))
	msg.Metadata.Set(sinks.MetaAttempt, "1")
	return msg
}
