package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	_ "github.com/redpanda-data/benthos/v4/public/components/io"   // http_client
	_ "github.com/redpanda-data/benthos/v4/public/components/pure" // the producer func's input, mutation, Bloblang
	"github.com/redpanda-data/benthos/v4/public/service"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/cmd/sinkbench/internal/bench"
)

// The headers the webhook sink sends besides Content-Type and User-Agent,
// which the signed peers send too: the request on the wire is the same.
const (
	headerTopic     = "X-Sinkbus-Topic"
	headerRequestID = "X-Sinkbus-Request-Id"
	eventName       = "order.created"
)

func sinkbusSide(cfg bus.Config) func(*bench.Endpoint) (func(int), func()) {
	return func(ep *bench.Endpoint) (func(int), func()) {
		b, stop := bench.WebhookBus(cfg, ep.URL, false)
		return func(n int) { bench.PublishOrders(b, n) }, stop
	}
}

// benthosSignMapping signs as the webhook sink does: Standard Webhooks'
// HMAC-SHA256 of "id.timestamp.body", base64, under the shared key.
const benthosSignMapping = `
mutation: |
  let id = uuid_v4()
  let ts = now().ts_unix().string()
  meta webhook_id = $id
  meta webhook_timestamp = $ts
  meta webhook_signature = "v1," + ($id + "." + $ts + "." + content().string()).hash("hmac_sha256", %q).encode("base64")
  meta request_id = uuid_v4()
`

const benthosOutput = `
http_client:
  url: %q
  verb: POST
  max_in_flight: %d
  headers:
    Content-Type: application/json
`

const benthosSignedHeaders = `    ` + headerTopic + `: ` + eventName + `
    ` + headerRequestID + `: ${! @request_id }
    webhook-id: ${! @webhook_id }
    webhook-timestamp: ${! @webhook_timestamp }
    webhook-signature: ${! @webhook_signature }
`

// benthosSide embeds a Benthos stream: a producer func feeding an
// http_client output. idle gives it IdleTransport instead of its stock
// transport, net/http's DefaultTransport; signed adds the signing mapping.
func benthosSide(idle, signed bool) func(*bench.Endpoint) (func(int), func()) {
	return func(ep *bench.Endpoint) (func(int), func()) {
		sb := service.NewStreamBuilder()
		// Its logs would go to stdout, among the figures.
		sb.SetLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
		produce, err := sb.AddProducerFunc()
		bench.Must(err)
		out := fmt.Sprintf(benthosOutput, ep.URL, bench.Concurrency)
		if signed {
			bench.Must(sb.AddProcessorYAML(fmt.Sprintf(benthosSignMapping, bench.WebhookKey)))
			out += benthosSignedHeaders
		}
		bench.Must(sb.AddOutputYAML(out))
		stream, err := sb.Build()
		bench.Must(err)

		body := bench.Envelope()
		send := func(n int) {
			bench.PublishAll(n, func(int) {
				bench.Must(produce(context.Background(), service.NewMessage(body)))
			})
		}
		ctx, cancel := context.WithCancel(context.Background())
		ran := make(chan struct{})
		if idle {
			// http_client has no setting for idle connections: it uses
			// net/http's DefaultTransport, read when the output is built,
			// which the first message proves done. The stock side keeps the
			// real one.
			stock := http.DefaultTransport
			http.DefaultTransport = bench.IdleTransport()
			defer func() { http.DefaultTransport = stock }()
		}
		go func() { defer close(ran); _ = stream.Run(ctx) }()
		done := ep.Expect(1)
		send(1)
		bench.Wait(done, bench.RoundLimit, func() string { return "benthos: first message not delivered" })
		return send, func() {
			stopCtx, stopped := context.WithTimeout(context.Background(), 10*time.Second)
			defer stopped()
			_ = stream.Stop(stopCtx)
			cancel()
			<-ran
		}
	}
}

// watermillSide is a plain Watermill router on GoChannel whose handler
// posts each message with net/http; stock, with Watermill's stock Retry,
// Timeout and Recoverer; signed, signing each request as rawSide does.
// GoChannel hands out every message at once; a slot taken before Publish
// and freed when the chain returns keeps 8 in flight, as on the other
// sides.
func watermillSide(stock, signed bool) func(*bench.Endpoint) (func(int), func()) {
	return func(ep *bench.Endpoint) (func(int), func()) {
		pubsub := gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{})
		router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
		bench.Must(err)
		slots := make(chan struct{}, bench.Concurrency)
		router.AddMiddleware(func(h message.HandlerFunc) message.HandlerFunc {
			return func(msg *message.Message) ([]*message.Message, error) {
				defer func() { <-slots }()
				return h(msg)
			}
		})
		if stock {
			router.AddMiddleware(bench.StockMiddleware()...)
		}
		client := &http.Client{Transport: bench.IdleTransport()}
		router.AddConsumerHandler("webhook", "events", pubsub, func(msg *message.Message) error {
			var header func(http.Header)
			if signed {
				header = func(h http.Header) { signStandard(h, msg.Payload) }
			}
			return bench.Post(msg.Context(), client, ep.URL, msg.Payload, header)
		})
		go func() { _ = router.Run(context.Background()) }()
		<-router.Running()

		body := bench.Envelope()
		send := func(n int) {
			bench.PublishAll(n, func(int) {
				slots <- struct{}{}
				bench.Must(pubsub.Publish("events", message.NewMessage(watermill.NewULID(), body)))
			})
		}
		return send, func() { _ = router.Close(); _ = pubsub.Close() }
	}
}

// rawSide posts from Concurrency goroutines with one net/http client;
// signed, it signs each request as a Go developer would by hand.
func rawSide(signed bool) func(*bench.Endpoint) (func(int), func()) {
	return func(ep *bench.Endpoint) (func(int), func()) {
		client := &http.Client{Transport: bench.IdleTransport()}
		body := bench.Envelope()
		var header func(http.Header)
		if signed {
			header = func(h http.Header) { signStandard(h, body) }
		}
		send := func(n int) {
			bench.PublishAll(n, func(int) {
				bench.Must(bench.Post(context.Background(), client, ep.URL, body, header))
			})
		}
		return send, client.CloseIdleConnections
	}
}

var webhookKey = []byte(bench.WebhookKey)

// signStandard sets the headers the webhook sink sends, signing body with
// a fresh event id: Standard Webhooks' HMAC-SHA256 of "id.timestamp.body".
func signStandard(h http.Header, body []byte) {
	id := watermill.NewULID()
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	mac := hmac.New(sha256.New, webhookKey)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	h.Set(headerTopic, eventName)
	h.Set(headerRequestID, watermill.NewUUID())
	h.Set("Webhook-Id", id)
	h.Set("Webhook-Timestamp", ts)
	h.Set("Webhook-Signature", "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
}

// verifier checks requests with the Standard Webhooks reference library.
type verifier struct {
	wh       *standardwebhooks.Webhook
	ok, bad  atomic.Int64
	mu       sync.Mutex
	firstErr error
}

func newVerifier() *verifier {
	wh, err := standardwebhooks.NewWebhook(bench.WebhookSecret)
	bench.Must(err)
	return &verifier{wh: wh}
}

func (v *verifier) observe(r *http.Request, body []byte) {
	err := v.wh.Verify(body, r.Header)
	if err == nil && (r.Header.Get(headerTopic) == "" || r.Header.Get(headerRequestID) == "") {
		err = fmt.Errorf("missing %s or %s", headerTopic, headerRequestID)
	}
	if err == nil {
		v.ok.Add(1)
		return
	}
	v.bad.Add(1)
	v.mu.Lock()
	if v.firstErr == nil {
		v.firstErr = err
	}
	v.mu.Unlock()
}

// check fails unless all n requests verified.
func (v *verifier) check(side string, n int) error {
	if v.bad.Load() == 0 && v.ok.Load() == int64(n) {
		return nil
	}
	return fmt.Errorf("%s: %d of %d requests verified, %d failed (first: %v)", side, v.ok.Load(), n, v.bad.Load(), v.firstErr)
}
