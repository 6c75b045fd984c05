package webhook_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/internal/clock"
	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/webhook"
)

// start is the fake clock's time in every test.
var start = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// event returns a message as the bus builds it.
func event(id, name, payload string) *message.Message {
	msg := message.NewMessage(id, []byte(payload))
	msg.Metadata.Set(sinks.MetaName, name)
	msg.Metadata.Set(sinks.MetaTenant, "acme")
	msg.Metadata.Set(sinks.MetaPublishedAt, "2026-03-01T11:59:58.123456789Z")
	msg.Metadata.Set(sinks.MetaAttempt, "1")
	msg.Metadata.Set("source", "checkout")
	return msg
}

func testEnv() (sinks.Env, *clock.Fake) {
	c := clock.NewFake(start)
	return sinks.Env{IntegrationID: "erp-1", Clock: c, Concurrency: 4}, c
}

// newPublisher builds a publisher for tests, allowed to reach loopback
// servers, and closes it with the test.
func newPublisher(t testing.TB, cfg webhook.Config) (*webhook.Publisher, *clock.Fake) {
	t.Helper()
	env, c := testEnv()
	cfg.AllowPrivateNetworks = true
	p, err := webhook.New(cfg, env)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close()) })
	return p, c
}

// request is what a receiver got.
type request struct {
	Method, Path, RawQuery string
	Header                 http.Header
	Body                   []byte
}

// receiver is an httptest server that records requests and answers status.
type receiver struct {
	*httptest.Server
	requests chan request
	hits     atomic.Int32
}

func newReceiver(t testing.TB, status int) *receiver {
	t.Helper()
	return newReceiverWith(t, status, nil)
}

// newReceiverWith is newReceiver with its handler wrapped by wrap, unless
// nil: to delay or change some answers.
func newReceiverWith(t testing.TB, status int, wrap func(rc *receiver, next http.Handler) http.Handler) *receiver {
	t.Helper()
	rc := &receiver{requests: make(chan request, 100)}
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc.hits.Add(1)
		body, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		rc.requests <- request{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), body}
		w.WriteHeader(status)
	})
	if wrap != nil {
		h = wrap(rc, h)
	}
	rc.Server = httptest.NewServer(h)
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) next(t testing.TB) request {
	t.Helper()
	select {
	case r := <-rc.requests:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("the receiver got no request")
		return request{}
	}
}

// class is the class of err as the bus sees it.
func class(err error) sinks.Class {
	c, _ := sinks.Classify(err)
	return c
}
