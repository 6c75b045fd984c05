package main

import (
	"context"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/sinkbus/sinkbus/cmd/sinkbench/internal/bench"
	"github.com/sinkbus/sinkbus/middleware"
)

func init() {
	register(benchCase{
		name:  "middleware",
		about: "a Watermill router delivering from GoChannel through our whole chain (reject, retry, breaker, timeout, recoverer) to a no-op sink, vs the same router and transport with Watermill's stock Recoverer+Timeout+Retry around a no-op handler",
		setup: setupMiddleware,
	})
}

// routedSide is one side of the middleware case: a router reading a
// GoChannel, and a round that publishes n messages and waits for all of
// them to be handled.
type routedSide struct {
	pubsub *gochannel.GoChannel
	router *message.Router
	c      *bench.Counter
}

func newRoutedSide(name string, handler func(c *bench.Counter) message.NoPublishHandlerFunc, mw ...message.HandlerMiddleware) *routedSide {
	s := &routedSide{
		pubsub: gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true}, watermill.NopLogger{}),
		c:      &bench.Counter{},
	}
	router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	bench.Must(err)
	router.AddMiddleware(mw...)
	router.AddConsumerHandler(name, "events", s.pubsub, handler(s.c))
	go func() { _ = router.Run(context.Background()) }()
	<-router.Running()
	s.router = router
	return s
}

func (s *routedSide) round(n int) float64 {
	done := s.c.Expect(int64(n))
	start := time.Now()
	bench.PublishAll(n, func(int) { bench.Must(s.pubsub.Publish("events", bench.Message())) })
	<-done
	return bench.PerSecond(n, time.Since(start))
}

func (s *routedSide) close() {
	_ = s.router.Close()
	_ = s.pubsub.Close()
}

// setupMiddleware compares the two chains where they run: in a router's
// handler, on the same transport, the same messages and the same
// concurrency. Ours is composed in the handler function, as the bus does;
// the stock one is router middleware with the same retry policy.
func setupMiddleware(quick bool) (ours, raw func() float64, cleanup func(), skip string) {
	n := 400_000
	if quick {
		n = 100_000
	}
	n -= n % bench.Concurrency

	chain, err := middleware.New(middleware.Config{
		IntegrationID: "bench",
		Log:           middleware.NewMemoryLog(0),
		Rejected:      middleware.NewMemoryRejected(0),
	})
	bench.Must(err)
	oursSide := newRoutedSide("ours", func(c *bench.Counter) message.NoPublishHandlerFunc {
		var sink message.Publisher = noopPublisher{c}
		h := chain.Middleware(func(msg *message.Message) ([]*message.Message, error) {
			return nil, sink.Publish("events", msg)
		})
		return func(msg *message.Message) error {
			_, err := h(msg)
			return err
		}
	})

	rawSide := newRoutedSide("raw", func(c *bench.Counter) message.NoPublishHandlerFunc {
		return func(*message.Message) error { c.Hit(); return nil }
	}, bench.StockMiddleware()...)

	ours = func() float64 { return oursSide.round(n) }
	raw = func() float64 { return rawSide.round(n) }
	cleanup = func() {
		oursSide.close()
		rawSide.close()
	}
	return ours, raw, cleanup, ""
}
