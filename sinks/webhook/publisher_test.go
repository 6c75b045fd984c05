package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/field"
	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/webhook"
)

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestWebhookSink_delivers_envelope(t *testing.T) {
	rc := newReceiver(t, http.StatusNoContent)
	p, c := newPublisher(t, webhook.Config{URL: rc.URL + "/hooks/orders?tenant=acme"})
	msg := event("01J00000000000000000000001", "order.fulfilled", `{"order_id":"o-1","total":12.5}`)

	require.NoError(t, p.Publish("sinkbus.erp-1", msg))

	got := rc.next(t)
	assert.Equal(t, http.MethodPost, got.Method)
	assert.Equal(t, "/hooks/orders", got.Path)
	assert.Equal(t, "tenant=acme", got.RawQuery)
	assert.JSONEq(t, string(sinks.AppendEnvelope(nil, msg)), string(got.Body))
	var env sinks.Envelope
	require.NoError(t, json.Unmarshal(got.Body, &env))
	assert.Equal(t, "01J00000000000000000000001", env.ID)
	assert.Equal(t, "order.fulfilled", env.Name)
	assert.Equal(t, "acme", env.Tenant)
	assert.Equal(t, map[string]string{"source": "checkout"}, env.Metadata)

	h := got.Header
	assert.Equal(t, "application/json", h.Get("Content-Type"))
	assert.Equal(t, webhook.UserAgent(), h.Get("User-Agent"))
	assert.Regexp(t, `^sinkbus/[0-9A-Za-z.+-]+$`, h.Get("User-Agent"))
	assert.Equal(t, "order.fulfilled", h.Get("X-Sinkbus-Topic"))
	assert.Regexp(t, uuidPattern, h.Get("X-Sinkbus-Request-Id"))
	assert.Empty(t, h.Values("X-Sinkbus-Replayed"))
	assert.Equal(t, msg.UUID, h.Get("webhook-id"))
	assert.Equal(t, strconv.FormatInt(c.Now().Unix(), 10), h.Get("webhook-timestamp"))
	assert.Empty(t, h.Values("webhook-signature"), "no secret, no signature")
	assert.Empty(t, h.Values("Authorization"))
}

func TestWebhookSink_topic_header_falls_back_to_topic(t *testing.T) {
	rc := newReceiver(t, http.StatusOK)
	p, _ := newPublisher(t, webhook.Config{URL: rc.URL})

	require.NoError(t, p.Publish("orders", message.NewMessage("m-1", []byte(`{}`))))

	assert.Equal(t, "orders", rc.next(t).Header.Get("X-Sinkbus-Topic"))
}

func TestWebhookSink_replayed_header(t *testing.T) {
	rc := newReceiver(t, http.StatusOK)
	p, _ := newPublisher(t, webhook.Config{URL: rc.URL})
	msg := event("e-1", "order.created", `{}`)
	msg.Metadata.Set(sinks.MetaReplayed, "true")

	require.NoError(t, p.Publish("t", msg))

	assert.Equal(t, "true", rc.next(t).Header.Get("X-Sinkbus-Replayed"))
}

func TestWebhookSink_request_id_is_new_per_attempt(t *testing.T) {
	rc := newReceiver(t, http.StatusServiceUnavailable)
	p, c := newPublisher(t, webhook.Config{URL: rc.URL, SecretKey: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})
	msg := event("e-1", "order.created", `{}`)

	require.Error(t, p.Publish("t", msg))
	c.Advance(time.Minute)
	require.Error(t, p.Publish("t", msg))

	first, second := rc.next(t).Header, rc.next(t).Header
	assert.NotEqual(t, first.Get("X-Sinkbus-Request-Id"), second.Get("X-Sinkbus-Request-Id"))
	assert.Equal(t, "e-1", first.Get("webhook-id"))
	assert.Equal(t, "e-1", second.Get("webhook-id"), "the event id is the idempotency key")
	assert.NotEqual(t, first.Get("webhook-timestamp"), second.Get("webhook-timestamp"))
	assert.NotEqual(t, first.Get("webhook-signature"), second.Get("webhook-signature"))
}

func TestWebhookSink_publishes_several_messages_in_order(t *testing.T) {
	rc := newReceiver(t, http.StatusOK)
	p, _ := newPublisher(t, webhook.Config{URL: rc.URL})

	require.NoError(t, p.Publish("t",
		event("e-1", "a.b", `1`), event("e-2", "a.b", `2`), event("e-3", "a.b", `3`)))

	for _, id := range []string{"e-1", "e-2", "e-3"} {
		assert.Equal(t, id, rc.next(t).Header.Get("webhook-id"))
	}
}

func TestWebhookSink_stops_at_first_failure(t *testing.T) {
	rc := newReceiver(t, http.StatusBadRequest)
	p, _ := newPublisher(t, webhook.Config{URL: rc.URL})

	err := p.Publish("t", event("e-1", "a.b", `1`), event("e-2", "a.b", `2`))

	assert.Equal(t, sinks.ClassPermanent, class(err))
	assert.EqualValues(t, 1, rc.hits.Load())
}

func TestWebhookSink_status_classes(t *testing.T) {
	redirectTarget := newReceiver(t, http.StatusOK)
	tests := []struct {
		status int
		want   sinks.Class
	}{
		{200, sinks.ClassDelivered},
		{201, sinks.ClassDelivered},
		{202, sinks.ClassDelivered},
		{204, sinks.ClassDelivered},
		{301, sinks.ClassPermanent},
		{302, sinks.ClassPermanent},
		{307, sinks.ClassPermanent},
		{308, sinks.ClassPermanent},
		{400, sinks.ClassPermanent},
		{401, sinks.ClassPermanent},
		{404, sinks.ClassPermanent},
		{408, sinks.ClassRetryable},
		{410, sinks.ClassPermanent},
		{413, sinks.ClassPermanent},
		{422, sinks.ClassPermanent},
		{429, sinks.ClassRetryable},
		{500, sinks.ClassRetryable},
		{502, sinks.ClassRetryable},
		{503, sinks.ClassRetryable},
		{504, sinks.ClassRetryable},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.status), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				if tt.status >= 300 && tt.status < 400 {
					w.Header().Set("Location", redirectTarget.URL+"/elsewhere")
				}
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, "  answer "+strconv.Itoa(tt.status)+"\n")
			}))
			defer srv.Close()
			p, _ := newPublisher(t, webhook.Config{URL: srv.URL + "/hook"})

			err := p.Publish("t", event("e-1", "order.created", `{}`))

			assert.Equal(t, tt.want, class(err))
			if tt.want == sinks.ClassDelivered {
				require.NoError(t, err)
				return
			}
			var se *sinks.StatusError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, tt.status, se.StatusCode)
			assert.Equal(t, srv.URL+"/hook", se.Destination)
			assert.Equal(t, "answer "+strconv.Itoa(tt.status), se.Body)
		})
	}
	assert.Zero(t, redirectTarget.hits.Load(), "a redirect was followed")
}

func TestWebhookSink_retry_after_header(t *testing.T) {
	env, c := testEnv()
	tests := []struct {
		name       string
		status     int
		retryAfter string
		want       time.Duration
		wantClass  sinks.Class
	}{
		{"seconds", 429, "120", 120 * time.Second, sinks.ClassRetryable},
		{"seconds on 503", 503, "7", 7 * time.Second, sinks.ClassRetryable},
		{"HTTP date", 503, c.Now().Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, sinks.ClassRetryable},
		{"HTTP date in the past", 429, c.Now().Add(-time.Hour).Format(http.TimeFormat), 0, sinks.ClassRetryable},
		{"garbage", 429, "soon", 0, sinks.ClassRetryable},
		{"negative", 429, "-5", 0, sinks.ClassRetryable},
		{"absurd", 429, "99999999999999999", 24 * time.Hour, sinks.ClassRetryable},
		{"none", 500, "", 0, sinks.ClassRetryable},
		{"ignored on a permanent status", 400, "60", 0, sinks.ClassPermanent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.retryAfter != "" {
					w.Header().Set("Retry-After", tt.retryAfter)
				}
				w.WriteHeader(tt.status)
			}))
			defer srv.Close()
			p, err := webhook.New(webhook.Config{URL: srv.URL, AllowPrivateNetworks: true}, env)
			require.NoError(t, err)
			defer p.Close()

			gotClass, after := sinks.Classify(p.Publish("t", event("e-1", "a.b", `{}`)))

			assert.Equal(t, tt.wantClass, gotClass)
			assert.Equal(t, tt.want, after)
		})
	}
}

// blockingReceiver answers only when released or when the client goes away.
func blockingReceiver(t *testing.T) (srv *httptest.Server, entered <-chan struct{}, release func()) {
	t.Helper()
	in := make(chan struct{}, 10)
	done := make(chan struct{})
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in <- struct{}{}
		select {
		case <-done:
		case <-r.Context().Done():
		}
	}))
	var closed bool
	release = func() {
		if !closed {
			closed = true
			close(done)
		}
	}
	t.Cleanup(func() { release(); srv.Close() })
	return srv, in, release
}

func TestWebhookSink_timeout_is_retryable(t *testing.T) {
	srv, _, _ := blockingReceiver(t)
	p, _ := newPublisher(t, webhook.Config{URL: srv.URL, Timeout: sinks.Duration(100 * time.Millisecond)})

	err := p.Publish("t", event("e-1", "a.b", `{}`))

	assert.Equal(t, sinks.ClassRetryable, class(err))
	assert.True(t, sinks.IsTimeout(err), "%v", err)
	var de *webhook.DeliveryError
	require.ErrorAs(t, err, &de)
	assert.Contains(t, err.Error(), "no response within 100ms")
}

func TestWebhookSink_message_deadline_replaces_the_timeout(t *testing.T) {
	t.Run("later than the timeout", func(t *testing.T) {
		// The receiver takes 50 times the sink's timeout; the message's
		// deadline, the attempt's, allows it.
		rc := newReceiverWith(t, http.StatusNoContent, func(_ *receiver, next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				time.Sleep(50 * time.Millisecond)
				next.ServeHTTP(w, r)
			})
		})
		p, _ := newPublisher(t, webhook.Config{URL: rc.URL, Timeout: sinks.Duration(time.Millisecond)})
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		msg := event("e-1", "a.b", `{}`)
		msg.SetContext(ctx)

		require.NoError(t, p.Publish("t", msg))
		assert.EqualValues(t, 1, rc.hits.Load())
	})
	t.Run("earlier than the timeout", func(t *testing.T) {
		srv, _, _ := blockingReceiver(t)
		p, _ := newPublisher(t, webhook.Config{URL: srv.URL, Timeout: sinks.Duration(webhook.MaxTimeout)})
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		msg := event("e-1", "a.b", `{}`)
		msg.SetContext(ctx)

		err := p.Publish("t", msg)

		assert.Equal(t, sinks.ClassRetryable, class(err))
		assert.True(t, sinks.IsTimeout(err), "%v", err)
		assert.NotContains(t, err.Error(), "no response within", "the deadline was the caller's, not the sink's")
	})
}

func TestWebhookSink_message_context_bounds_the_request(t *testing.T) {
	srv, entered, _ := blockingReceiver(t)
	p, _ := newPublisher(t, webhook.Config{URL: srv.URL})
	ctx, cancel := context.WithCancel(context.Background())
	msg := event("e-1", "a.b", `{}`)
	msg.SetContext(ctx)
	go func() {
		<-entered
		cancel()
	}()

	err := p.Publish("t", msg)

	assert.Equal(t, sinks.ClassRetryable, class(err))
	assert.ErrorIs(t, err, context.Canceled)
}

func TestWebhookSink_connection_closed_is_retryable(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	defer srv.Close()
	p, _ := newPublisher(t, webhook.Config{URL: srv.URL})

	err := p.Publish("t", event("e-1", "a.b", `{}`))

	require.Error(t, err)
	assert.Equal(t, sinks.ClassRetryable, class(err))
	var de *webhook.DeliveryError
	assert.ErrorAs(t, err, &de)
}

func TestWebhookSink_nothing_listening_is_retryable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	p, _ := newPublisher(t, webhook.Config{URL: "http://" + addr + "/hook"})

	err = p.Publish("t", event("e-1", "a.b", `{}`))

	assert.Equal(t, sinks.ClassRetryable, class(err))
}

func TestWebhookSink_response_body_is_read_bounded(t *testing.T) {
	const size = 10 << 20
	type outcome struct {
		written int
		err     error
	}
	handlerDone := make(chan outcome, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		chunk := []byte(strings.Repeat("é", 32<<10)) // 64 KiB of two-byte runes
		var o outcome
		for o.written < size && o.err == nil {
			var n int
			n, o.err = w.Write(chunk)
			o.written += n
			if f, ok := w.(http.Flusher); ok && o.err == nil {
				f.Flush()
			}
		}
		handlerDone <- o
	}))
	defer srv.Close()
	p, _ := newPublisher(t, webhook.Config{URL: srv.URL})

	err := p.Publish("t", event("e-1", "a.b", `{}`))

	var se *sinks.StatusError
	require.ErrorAs(t, err, &se)
	assert.LessOrEqual(t, len(se.Body), webhook.MaxResponseExcerpt)
	assert.Greater(t, len(se.Body), webhook.MaxResponseExcerpt-4)
	assert.True(t, strings.HasPrefix(se.Body, "éééé"))
	assert.NotContains(t, se.Body, "\uFFFD", "a rune cut at the limit is dropped")
	select {
	case o := <-handlerDone:
		assert.Error(t, o.err, "the receiver wrote all 10 MiB: the sink read them")
		assert.Less(t, o.written, size)
	case <-time.After(10 * time.Second):
		t.Fatal("the receiver's write never failed: the connection was kept open")
	}
}

func TestWebhookSink_errors_hide_credentials(t *testing.T) {
	rc := newReceiver(t, http.StatusInternalServerError)
	p, _ := newPublisher(t, webhook.Config{URL: strings.Replace(rc.URL, "http://", "http://user:hunter2pw@", 1) + "/hook?token=query-secret"})

	err := p.Publish("t", event("e-1", "a.b", `{}`))

	require.Error(t, err)
	assert.NotContains(t, err.Error(), "hunter2pw")
	assert.NotContains(t, err.Error(), "query-secret")
	assert.Contains(t, err.Error(), rc.URL+"/hook")
	got := rc.next(t)
	user, pass, ok := (&http.Request{Header: got.Header}).BasicAuth()
	require.True(t, ok)
	assert.Equal(t, "user", user)
	assert.Equal(t, "hunter2pw", pass)
	assert.Equal(t, "token=query-secret", got.RawQuery)

	// A request that gets no response names the destination the same way.
	rc.Close()
	err = p.Publish("t", event("e-2", "a.b", `{}`))
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "hunter2pw")
	assert.NotContains(t, err.Error(), "query-secret")
	assert.Contains(t, err.Error(), "Request to URL "+rc.URL+"/hook failed")
}

func TestWebhookSink_bearer_and_custom_headers(t *testing.T) {
	rc := newReceiver(t, http.StatusOK)
	p, _ := newPublisher(t, webhook.Config{
		URL:    rc.URL,
		APIKey: "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9",
		Headers: map[string]string{
			"X-Tenant":   "acme",
			"user-agent": "acme-erp-bridge/2",
		},
	})

	require.NoError(t, p.Publish("t", event("e-1", "a.b", `{}`)))

	h := rc.next(t).Header
	assert.Equal(t, "Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9", h.Get("Authorization"))
	assert.Equal(t, "acme", h.Get("X-Tenant"))
	assert.Equal(t, []string{"acme-erp-bridge/2"}, h.Values("User-Agent"))
}

func TestWebhookSink_cloudevents_body(t *testing.T) {
	rc := newReceiver(t, http.StatusOK)
	p, _ := newPublisher(t, webhook.Config{URL: rc.URL, Format: webhook.FormatCloudEvents, Source: "https://shop.example.com/events"})
	msg := event("e-1", "order.fulfilled", `{"order_id":"o-1"}`)

	require.NoError(t, p.Publish("t", msg))

	got := rc.next(t)
	assert.Equal(t, "application/cloudevents+json; charset=utf-8", got.Header.Get("Content-Type"))
	assert.JSONEq(t, `{
		"specversion": "1.0",
		"id": "e-1",
		"source": "https://shop.example.com/events",
		"type": "order.fulfilled",
		"time": "2026-03-01T11:59:58.123456789Z",
		"tenant": "acme",
		"datacontenttype": "application/json",
		"data": {"order_id": "o-1"}
	}`, string(got.Body))
}

func TestWebhookSink_cloudevents_defaults_and_foreign_payload(t *testing.T) {
	rc := newReceiver(t, http.StatusOK)
	p, _ := newPublisher(t, webhook.Config{URL: rc.URL, Format: webhook.FormatCloudEvents})

	require.NoError(t, p.Publish("legacy.topic", message.NewMessage("m-1", []byte("plain <text>"))))
	require.NoError(t, p.Publish("legacy.topic", message.NewMessage("m-2", nil)))

	assert.JSONEq(t, `{"specversion":"1.0","id":"m-1","source":"sinkbus","type":"legacy.topic",
		"datacontenttype":"application/json","data":"plain <text>"}`, string(rc.next(t).Body))
	assert.JSONEq(t, `{"specversion":"1.0","id":"m-2","source":"sinkbus","type":"legacy.topic",
		"datacontenttype":"application/json"}`, string(rc.next(t).Body))
}

func TestWebhookSink_close(t *testing.T) {
	srv, entered, release := blockingReceiver(t)
	env, _ := testEnv()
	p, err := webhook.New(webhook.Config{URL: srv.URL, AllowPrivateNetworks: true}, env)
	require.NoError(t, err)

	published := make(chan error, 1)
	go func() { published <- p.Publish("t", event("e-1", "a.b", `{}`)) }()
	<-entered
	closed := make(chan error, 1)
	go func() { closed <- p.Close() }()
	select {
	case <-closed:
		t.Fatal("Close returned while a request was in flight")
	case <-published:
		t.Fatal("Publish returned before the receiver answered")
	case <-time.After(100 * time.Millisecond): // Close had the time to return
	}
	release()

	require.NoError(t, <-published)
	require.NoError(t, <-closed)
	require.NoError(t, p.Close(), "Close is idempotent")
	assert.ErrorIs(t, p.Publish("t", event("e-2", "a.b", `{}`)), sinks.ErrClosed)
	assert.ErrorIs(t, p.PublishMessage("t", event("e-3", "a.b", `{}`)), sinks.ErrClosed)
}

func TestWebhookSink_new_refuses_invalid_config(t *testing.T) {
	env, _ := testEnv()
	p, err := webhook.New(webhook.Config{URL: "ftp://example.com"}, env)
	assert.Nil(t, p)
	var fe *field.Error
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, "url", fe.Field)

	pub, err := webhook.Config{}.NewPublisher(env)
	assert.Error(t, err)
	assert.True(t, pub == nil, "a nil interface, not a typed nil")
	assert.False(t, errors.Is(err, sinks.ErrClosed))
}

// Concurrent deliveries, through Publish and PublishMessage, in both
// signature modes with two keys, each send their own request id, event id
// and signatures. (The per-request header values and their bytes are one
// allocation, the values strings over those bytes; the hex signatures
// outgrow the room the values have.)
func TestWebhookSink_concurrent_deliveries_keep_their_own_header_values(t *testing.T) {
	for _, mode := range []string{webhook.SignatureStandard, webhook.SignatureHMACSHA256} {
		t.Run(mode, func(t *testing.T) {
			rc := newReceiver(t, http.StatusOK)
			secrets := []string{secret, "old-raw-secret"}
			p, _ := newPublisher(t, webhook.Config{URL: rc.URL, Signature: mode, SecretKey: secrets[0], PreviousSecretKey: secrets[1]})
			const n = 64
			errs := make(chan error, n)
			for i := range n {
				go func() {
					msg := event(fmt.Sprintf("e-%d", i), "a.b", fmt.Sprintf(`{"n":%d}`, i))
					if i%2 == 0 {
						errs <- p.Publish("t", msg)
					} else {
						errs <- p.PublishMessage("t", msg)
					}
				}()
			}
			for range n {
				require.NoError(t, <-errs)
			}
			requestIDs, eventIDs := map[string]bool{}, map[string]bool{}
			for range n {
				got := rc.next(t)
				var env sinks.Envelope
				require.NoError(t, json.Unmarshal(got.Body, &env))
				eventIDs[env.ID] = true
				assert.Equal(t, "a.b", got.Header.Get("X-Sinkbus-Topic"))
				id := got.Header.Get("X-Sinkbus-Request-Id")
				assert.Len(t, id, 36)
				requestIDs[id] = true
				for _, s := range secrets {
					if mode == webhook.SignatureHMACSHA256 {
						assert.NoError(t, webhook.VerifyHMAC([]string{s}, got.Header.Get(webhook.DefaultSignatureHeader), got.Body))
						continue
					}
					assert.Equal(t, env.ID, got.Header.Get("webhook-id"), "body and headers of one request")
					assert.NoError(t, webhook.Verify([]string{s}, got.Header, got.Body, start, 0))
				}
			}
			assert.Len(t, requestIDs, n)
			assert.Len(t, eventIDs, n)
		})
	}
}
