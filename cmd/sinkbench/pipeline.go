package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	wmw "github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/sinks"
)

const publishers = 8

func init() {
	register(benchCase{
		name:  "pipeline",
		about: "publish → journal (memory) → filter → delivery chain → no-op sink, vs a raw Watermill router with Recoverer+Timeout+Retry",
		setup: setupPipeline,
	})
}

// payload1K is a 1 KiB JSON payload.
var payload1K = json.RawMessage(`{"id":"order-1","note":"` + strings.Repeat("x", 1000) + `"}`)

// counter is a no-op sink: it counts deliveries and signals every target.
type counter struct {
	n      atomic.Int64
	conns  atomic.Int64 // connections a receiver accepted
	mu     sync.Mutex
	target int64
	done   chan struct{}
}

func (c *counter) expect(n int64) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.target = c.n.Load() + n
	c.done = make(chan struct{})
	return c.done
}

func (c *counter) hit() {
	if v := c.n.Add(1); v >= c.target {
		c.mu.Lock()
		if c.done != nil && v >= c.target {
			close(c.done)
			c.done = nil
		}
		c.mu.Unlock()
	}
}

// noopSink is a sinks.Config whose publisher only counts.
type noopSink struct{ c *counter }

func (noopSink) Type() string                 { return "noop" }
func (noopSink) Validate() error              { return nil }
func (s noopSink) Masked() sinks.Config       { return s }
func (noopSink) MarshalJSON() ([]byte, error) { return []byte("{}"), nil }
func (s noopSink) NewPublisher(sinks.Env) (message.Publisher, error) {
	return noopPublisher{s.c}, nil
}

type noopPublisher struct{ c *counter }

func (p noopPublisher) Publish(_ string, msgs ...*message.Message) error {
	for range msgs {
		p.c.hit()
	}
	return nil
}
func (noopPublisher) Close() error { return nil }

func noopRegistry() *sinks.Registry {
	r := sinks.DefaultRegistry().Clone()
	must(r.Register(sinks.Type{Name: "noop", Decode: func(json.RawMessage) (sinks.Config, error) {
		return nil, fmt.Errorf("not from JSON")
	}}))
	return r
}

// runBus starts a bus and returns it with a stop function.
func runBus(cfg bus.Config) (*bus.Bus, func()) {
	b, err := bus.New(cfg)
	must(err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = b.Run(ctx); close(done) }()
	<-b.Running()
	return b, func() { cancel(); must(b.Close()); <-done }
}

// publishAll publishes n events from the cases' publishers goroutines.
func publishAll(n int, publish func(i int)) { publishFrom(publishers, n, publish) }

// publishFrom calls publish once for each i in [0, n), from workers
// goroutines.
func publishFrom(workers, n int, publish func(i int)) {
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

func setupPipeline(quick bool) (ours, raw func() float64, cleanup func(), skip string) {
	n := 200_000
	if quick {
		n = 50_000
	}
	n -= n % publishers

	c := &counter{}
	b, stopBus := runBus(bus.Config{Sinks: noopRegistry(), Retention: -1, MemoryBytes: unboundedMemory})
	_, err := b.Integrations().Create(context.Background(), bus.Integration{
		ID: "noop", Observes: []string{"order.*"}, Sink: noopSink{c},
	})
	must(err)
	ours = func() float64 {
		done := c.expect(int64(n))
		start := time.Now()
		publishAll(n, func(int) {
			must(b.Publish(context.Background(), bus.Event{Name: "order.created", Payload: payload1K}))
		})
		<-done
		return perSecond(n, time.Since(start))
	}

	rc := &counter{}
	pubsub := gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true}, watermill.NopLogger{})
	router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	must(err)
	router.AddMiddleware(
		wmw.Recoverer,
		wmw.Timeout(30*time.Second),
		wmw.Retry{MaxRetries: 3, InitialInterval: 100 * time.Millisecond, Logger: watermill.NopLogger{}}.Middleware,
	)
	router.AddConsumerHandler("noop", "events", pubsub, func(*message.Message) error { rc.hit(); return nil })
	go func() { _ = router.Run(context.Background()) }()
	<-router.Running()
	raw = func() float64 {
		done := rc.expect(int64(n))
		start := time.Now()
		publishAll(n, func(int) {
			msg := message.NewMessage(watermill.NewULID(), []byte(payload1K))
			msg.Metadata.Set("name", "order.created")
			must(pubsub.Publish("events", msg))
		})
		<-done
		return perSecond(n, time.Since(start))
	}
	cleanup = func() {
		stopBus()
		_ = router.Close()
		_ = pubsub.Close()
	}
	return ours, raw, cleanup, ""
}
