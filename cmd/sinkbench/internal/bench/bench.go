// Package bench is what sinkbench and its peers module share, so that every
// side they compare runs the same workload on the same terms: 1 KiB events
// sent at Concurrency, the same in-process receiver, the same idle
// connections, the same cost meter, and the sinkbus webhook side itself.
package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sinkbus/sinkbus/sinks"
)

// Concurrency is how many events every side has in flight: the webhook
// integration's concurrency, the raw clients' goroutines, Benthos's
// max_in_flight.
const Concurrency = 8

// Payload1K is a 1 KiB JSON payload.
var Payload1K = json.RawMessage(`{"id":"order-1","note":"` + strings.Repeat("x", 1000) + `"}`)

// Message is an event as the bus hands it to a sink, for the raw sides to
// send the same bytes.
func Message() *message.Message {
	msg := message.NewMessage(watermill.NewULID(), []byte(Payload1K))
	msg.Metadata.Set(sinks.MetaName, "order.created")
	msg.Metadata.Set(sinks.MetaPublishedAt, time.Now().UTC().Format(time.RFC3339Nano))
	msg.Metadata.Set(sinks.MetaAttempt, "1")
	return msg
}

// Envelope is the body the webhook sink posts for such an event: the
// sides that are not sinkbus post these very bytes.
func Envelope() []byte { return sinks.AppendEnvelope(nil, Message()) }

// PublishAll calls publish once for each i in [0, n), from Concurrency
// goroutines.
func PublishAll(n int, publish func(i int)) { PublishFrom(Concurrency, n, publish) }

// PublishFrom calls publish once for each i in [0, n), from workers
// goroutines.
func PublishFrom(workers, n int, publish func(i int)) {
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				publish(i)
			}
		}()
	}
	wg.Wait()
}

// Counter counts events and signals when a target is reached.
type Counter struct {
	n      atomic.Int64
	target atomic.Int64 // read by Hit before it takes mu
	mu     sync.Mutex
	done   chan struct{}
}

// Expect returns a channel closed once n more events are counted.
func (c *Counter) Expect(n int64) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.target.Store(c.n.Load() + n)
	c.done = make(chan struct{})
	return c.done
}

// Hit counts one event.
func (c *Counter) Hit() {
	if v := c.n.Add(1); v >= c.target.Load() {
		c.mu.Lock()
		if c.done != nil && v >= c.target.Load() {
			close(c.done)
			c.done = nil
		}
		c.mu.Unlock()
	}
}

// Count is how many events were counted in all.
func (c *Counter) Count() int64 { return c.n.Load() }

// PerSecond turns n events in d into events per second.
func PerSecond(n int, d time.Duration) float64 { return float64(n) / d.Seconds() }

// Median of xs (the upper one of an even count).
func Median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// Rate formats v in unit, "/s" when unit is empty.
func Rate(v float64, unit string) string {
	if unit == "" {
		unit = "/s"
	}
	return fmt.Sprintf("%.0f%s", v, unit)
}

// Must ends the run on err: a benchmark that went wrong has no figure.
func Must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "sinkbench:", err)
		os.Exit(1)
	}
}

// Wait waits for done, ending the run with what when it takes longer than
// limit: a side that lost an event would otherwise hang the run.
func Wait(done <-chan struct{}, limit time.Duration, what func() string) {
	select {
	case <-done:
	case <-time.After(limit):
		Must(fmt.Errorf("not done after %s: %s", limit, what()))
	}
}
