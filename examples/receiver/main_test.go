package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/replay"
	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/webhook"
)

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// A bus delivers to the receiver: each event is handled once, a replay
// included, and a request that is not signed with the secret is refused.
func TestReceiver_handles_signed_events_once_and_refuses_others(t *testing.T) {
	var mu sync.Mutex
	var handled []sinks.Envelope
	h, err := newReceiver(secret, func(e sinks.Envelope) error {
		mu.Lock()
		defer mu.Unlock()
		handled = append(handled, e)
		return nil
	})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	defer srv.Close()

	ctx := context.Background()
	b, err := bus.New(bus.Config{AllowPrivateNetworks: true})
	require.NoError(t, err)
	defer b.Close()
	go func() { _ = b.Run(ctx) }()
	<-b.Running()
	_, err = b.Integrations().Create(ctx, bus.Integration{ID: "erp",
		Sink: webhook.Config{URL: srv.URL, SecretKey: secret, AllowPrivateNetworks: true}})
	require.NoError(t, err)
	require.NoError(t, b.Publish(ctx, bus.Event{ID: "o-1", Name: "order.fulfilled", Tenant: "acme", Payload: []byte(`{"total":42}`)}))
	job, err := b.Integrations().Replay(ctx, "erp", replay.Request{})
	require.NoError(t, err)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	require.NoError(t, job.Wait(wctx))
	require.Eventually(t, func() bool { lag, _ := b.Integrations().Lag(ctx, "erp"); return lag == 0 }, 10*time.Second, time.Millisecond)

	mu.Lock()
	require.Len(t, handled, 1, "the replay is the same event")
	assert.Equal(t, "o-1", handled[0].ID)
	assert.JSONEq(t, `{"total":42}`, string(handled[0].Payload))
	mu.Unlock()

	resp, err := http.Post(srv.URL, "application/json", bytes.NewReader([]byte(`{"id":"forged","name":"order.fulfilled"}`)))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
}
