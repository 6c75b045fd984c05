package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	wmw "github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/sinks/webhook"
)

// WebhookKey is the HMAC key every signed side signs with, and
// WebhookSecret the same key as a Standard Webhooks secret. The key is
// ASCII so that a Bloblang mapping can hold it as a string.
const (
	WebhookKey    = "sinkbench-standard-webhooks-key-01"
	WebhookSecret = "whsec_c2lua2JlbmNoLXN0YW5kYXJkLXdlYmhvb2tzLWtleS0wMQ=="
)

// Order is the event every sinkbus side publishes.
var Order = bus.Event{Name: "order.created", Payload: Payload1K}

// RunBus starts a bus on cfg and returns it with a stop function.
func RunBus(cfg bus.Config) (*bus.Bus, func()) {
	b, err := bus.New(cfg)
	Must(err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = b.Run(ctx); close(done) }()
	<-b.Running()
	return b, func() { cancel(); Must(b.Close()); <-done }
}

// WebhookBus runs a bus on cfg with the integration "erp" posting every
// order.* event to url through the webhook sink, signed (Standard Webhooks)
// with WebhookSecret, at Concurrency. With stopped, the integration is
// created stopped.
func WebhookBus(cfg bus.Config, url string, stopped bool) (*bus.Bus, func()) {
	cfg.AllowPrivateNetworks = true
	b, stop := RunBus(cfg)
	in := bus.Integration{
		ID: "erp", Observes: []string{"order.*"}, Concurrency: Concurrency,
		Sink: webhook.Config{URL: url, SecretKey: WebhookSecret, AllowPrivateNetworks: true},
	}
	if stopped {
		in.Status = bus.Stopped
	}
	_, err := b.Integrations().Create(context.Background(), in)
	Must(err)
	return b, stop
}

// PublishOrders publishes n Order events into b from Concurrency
// goroutines.
func PublishOrders(b *bus.Bus, n int) {
	PublishAll(n, func(int) { Must(b.Publish(context.Background(), Order)) })
}

// IdleTransport is net/http's default transport with the idle connections
// the webhook sink keeps at Concurrency (two per delivery in flight): the
// transport of every side that is not sinkbus, unless a case says it keeps
// a peer's stock one.
func IdleTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 2 * Concurrency
	return t
}

// Post sends body to url as a JSON POST with header's extra fields, reads
// the response and fails on anything but a 2XX. A plain net/http client's
// request: what the raw sides and the Watermill handler do.
func Post(ctx context.Context, c *http.Client, url string, body []byte, header func(http.Header)) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if header != nil {
		header(req.Header)
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s answered %s", url, resp.Status)
	}
	return nil
}

// StockMiddleware is Watermill's stock Retry ▸ Timeout ▸ Recoverer with
// sinkbus's default retry policy and attempt timeout, in the order that
// gives each attempt its own timeout (added first runs outermost).
func StockMiddleware() []message.HandlerMiddleware {
	return []message.HandlerMiddleware{
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
	}
}

// RoundLimit bounds one round: a side that lost an event fails the run
// instead of hanging it.
const RoundLimit = 2 * time.Minute
