package main

import (
	"context"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	wmw "github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

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
	c      *counter
}

func newRoutedSide(name string, handler func(c *counter) message.NoPublishHandlerFunc, mw ...message.HandlerMiddleware) *routedSide {
	s := &routedSide{
		pubsub: gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true}, watermill.NopLogger{}),
		c:      &counter{},
	}
	router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	must(err)
	router.AddMiddleware(mw...)
	router.AddConsumerHandler(name, "events", s.pubsub, handler(s.c))
	go func() { _ = router.Run(context.Background()) }()
	<-router.Running()
	s.router = router
	return s
}

func (s *routedSide) round(n int) float64 {
	done := s.c.expect(int64(n))
	start := time.Now()
	publishAll(n, func(int) { must(s.pubsub.Publish("events", busMessage())) })
	<-done
	return perSecond(n, time.Since(start))
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
	n -= n % publishers

	chain, err := middleware.New(middleware.Config{
		IntegrationID: "bench",
		Log:           middleware.NewMemoryLog(0),
		Rejected:      middleware.NewMemoryRejected(0),
	})
	must(err)
	oursSide := newRoutedSide("ours", func(c *counter) message.NoPublishHandlerFunc {
		var sink message.Publisher = noopPublisher{c}
		h := chain.Middleware(func(msg *message.Message) ([]*message.Message, error) {
			return nil, sink.Publish("events", msg)
		})
		return func(msg *message.Message) error {
			_, err := h(msg)
			return err
		}
	})

	// Added first runs outermost: Retry ▸ Timeout ▸ Recoverer, a timeout
	// per attempt as in our chain.
	rawSide := newRoutedSide("raw", func(c *counter) message.NoPublishHandlerFunc {
		return func(*message.Message) error { c.hit(); return nil }
	},
		wmw.Retry{
			MaxRetries:          middleware.DefaultMaxAttempts - 1,
			InitialInterval:     middleware.DefaultInitialInterval,
			MaxInterval:         middleware.DefaultMaxInterval,
			Multiplier:          middleware.DefaultMultiplier,
			MaxElapsedTime:      middleware.DefaultMaxElapsedTime,
			RandomizationFactor: middleware.DefaultRandomizationFactor,
			ResetContextOnRetry: true,
			Logger:              watermill.NopLogger{},
		}.Middleware,
		wmw.Timeout(middleware.DefaultTimeout),
		wmw.Recoverer,
	)

	ours = func() float64 { return oursSide.round(n) }
	raw = func() float64 { return rawSide.round(n) }
	cleanup = func() {
		oursSide.close()
		rawSide.close()
	}
	return ours, raw, cleanup, ""
}
