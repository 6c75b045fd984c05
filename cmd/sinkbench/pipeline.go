package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	wmw "github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/cmd/sinkbench/internal/bench"
	"github.com/sinkbus/sinkbus/sinks"
)

func init() {
	register(benchCase{
		name:  "pipeline",
		about: "publish → journal (memory) → filter → delivery chain → no-op sink, vs a raw Watermill router with Recoverer+Timeout+Retry",
		setup: setupPipeline,
	})
}

// noopSink is a sinks.Config whose publisher only counts.
type noopSink struct{ c *bench.Counter }

func (noopSink) Type() string                 { return "noop" }
func (noopSink) Validate() error              { return nil }
func (s noopSink) Masked() sinks.Config       { return s }
func (noopSink) MarshalJSON() ([]byte, error) { return []byte("{}"), nil }
func (s noopSink) NewPublisher(sinks.Env) (message.Publisher, error) {
	return noopPublisher{s.c}, nil
}

type noopPublisher struct{ c *bench.Counter }

func (p noopPublisher) Publish(_ string, msgs ...*message.Message) error {
	for range msgs {
		p.c.Hit()
	}
	return nil
}
func (noopPublisher) Close() error { return nil }

func noopRegistry() *sinks.Registry {
	r := sinks.DefaultRegistry().Clone()
	bench.Must(r.Register(sinks.Type{Name: "noop", Decode: func(json.RawMessage) (sinks.Config, error) {
		return nil, fmt.Errorf("not from JSON")
	}}))
	return r
}

func setupPipeline(quick bool) (ours, raw func() float64, cleanup func(), skip string) {
	n := 200_000
	if quick {
		n = 50_000
	}
	n -= n % bench.Concurrency

	c := &bench.Counter{}
	b, stopBus := bench.RunBus(bus.Config{Sinks: noopRegistry(), Retention: -1, MemoryBytes: unboundedMemory})
	_, err := b.Integrations().Create(context.Background(), bus.Integration{
		ID: "noop", Observes: []string{"order.*"}, Sink: noopSink{c},
	})
	bench.Must(err)
	ours = func() float64 {
		done := c.Expect(int64(n))
		start := time.Now()
		bench.PublishAll(n, func(int) {
			bench.Must(b.Publish(context.Background(), bench.Order))
		})
		<-done
		return bench.PerSecond(n, time.Since(start))
	}

	rc := &bench.Counter{}
	pubsub := gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true}, watermill.NopLogger{})
	router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	bench.Must(err)
	router.AddMiddleware(
		wmw.Recoverer,
		wmw.Timeout(30*time.Second),
		wmw.Retry{MaxRetries: 3, InitialInterval: 100 * time.Millisecond, Logger: watermill.NopLogger{}}.Middleware,
	)
	router.AddConsumerHandler("noop", "events", pubsub, func(*message.Message) error { rc.Hit(); return nil })
	go func() { _ = router.Run(context.Background()) }()
	<-router.Running()
	raw = func() float64 {
		done := rc.Expect(int64(n))
		start := time.Now()
		bench.PublishAll(n, func(int) {
			msg := message.NewMessage(watermill.NewULID(), []byte(bench.Payload1K))
			msg.Metadata.Set("name", "order.created")
			bench.Must(pubsub.Publish("events", msg))
		})
		<-done
		return bench.PerSecond(n, time.Since(start))
	}
	cleanup = func() {
		stopBus()
		_ = router.Close()
		_ = pubsub.Close()
	}
	return ours, raw, cleanup, ""
}
