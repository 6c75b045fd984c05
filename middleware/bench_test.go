package middleware_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	wmw "github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/sinkbus/sinkbus/middleware"
)

func noop(*message.Message) ([]*message.Message, error) { return nil, nil }

// benchHandler measures h around a no-op sink, called directly, one message
// at a time and from every core. Each call starts from the message's own
// context, as each delivery does (Watermill's Timeout leaves its cancelled
// context on the message).
func benchHandler(b *testing.B, h message.HandlerFunc) {
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		msg := event("e1")
		b.ReportAllocs()
		for b.Loop() {
			msg.SetContext(ctx)
			if _, err := h(msg); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			msg := event("e1")
			for pb.Next() {
				msg.SetContext(ctx)
				if _, err := h(msg); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkChain is the whole chain (the package documentation gives its
// order) on its success path.
func BenchmarkChain(b *testing.B) {
	c, err := middleware.New(middleware.Config{
		IntegrationID: testID,
		Log:           middleware.NewMemoryLog(0),
		Rejected:      middleware.NewMemoryRejected(0),
	})
	if err != nil {
		b.Fatal(err)
	}
	benchHandler(b, c.Middleware(noop))
}

// BenchmarkWatermillStock is Watermill's own Retry, Timeout and Recoverer
// with the same policy, the baseline BenchmarkChain must match or beat.
func BenchmarkWatermillStock(b *testing.B) {
	retry := wmw.Retry{
		MaxRetries:          middleware.DefaultMaxAttempts - 1,
		InitialInterval:     middleware.DefaultInitialInterval,
		MaxInterval:         middleware.DefaultMaxInterval,
		Multiplier:          middleware.DefaultMultiplier,
		MaxElapsedTime:      middleware.DefaultMaxElapsedTime,
		RandomizationFactor: middleware.DefaultRandomizationFactor,
		ResetContextOnRetry: true,
	}
	benchHandler(b, retry.Middleware(wmw.Timeout(30*time.Second)(wmw.Recoverer(noop))))
}
