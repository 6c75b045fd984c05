package main

import (
	"context"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	wmw "github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/sinkbus/sinkbus/middleware"
)

func init() {
	register(benchCase{
		name:  "middleware",
		about: "our delivery chain (reject, retry, breaker, timeout, recoverer) around a no-op sink vs Watermill's stock Recoverer+Timeout+Retry around a no-op handler",
		setup: setupMiddleware,
	})
}

// callAll calls h on n messages from several goroutines and returns the rate.
func callAll(n int, h message.HandlerFunc) float64 {
	msgs := make([]*message.Message, n)
	for i := range msgs {
		msgs[i] = message.NewMessage(watermill.NewUUID(), []byte(payload1K))
		msgs[i].Metadata.Set("sinkbus_name", "order.created")
	}
	var wg sync.WaitGroup
	per := n / publishers
	start := time.Now()
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, m := range msgs[p*per : (p+1)*per] {
				_, err := h(m)
				must(err)
			}
		}()
	}
	wg.Wait()
	return perSecond(per*publishers, time.Since(start))
}

func setupMiddleware(quick bool) (ours, raw func() float64, cleanup func(), skip string) {
	n := 400_000
	if quick {
		n = 100_000
	}
	noop := func(*message.Message) ([]*message.Message, error) { return nil, nil }
	chain, err := middleware.New(middleware.Config{
		IntegrationID: "bench",
		Log:           middleware.NewMemoryLog(0),
		Rejected:      middleware.NewMemoryRejected(0),
	})
	must(err)
	oursH := chain.Middleware(noop)

	stock := wmw.Recoverer(wmw.Timeout(30 * time.Second)(noop))
	stock = wmw.Retry{MaxRetries: 3, InitialInterval: 100 * time.Millisecond, Logger: watermill.NopLogger{}}.Middleware(stock)
	// Watermill's Timeout leaves its cancelled context on the message; give
	// each call the message's own context back, as a router would.
	rawH := func(m *message.Message) ([]*message.Message, error) {
		m.SetContext(context.Background())
		return stock(m)
	}
	ours = func() float64 { return callAll(n, oursH) }
	raw = func() float64 { return callAll(n, rawH) }
	return ours, raw, func() {}, ""
}
