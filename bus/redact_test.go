package bus_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/bustest"
	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/sinks/webhook"
)

// An echoing destination answers every request with its headers and URL,
// as some error pages do: 503 for the first, 400 afterwards.
func echoingDestination(t *testing.T) *httptest.Server {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b strings.Builder
		fmt.Fprintf(&b, "%s %s\n", r.Method, r.URL.RequestURI())
		for k, vs := range r.Header {
			fmt.Fprintf(&b, "%s: %s\n", k, strings.Join(vs, ", "))
		}
		status := http.StatusBadRequest
		if n.Add(1) == 1 {
			status = http.StatusServiceUnavailable
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(b.String()))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// The integration's secrets, and what is shaped like a credential or a
// signature, are kept out of everything the bus stores or shows about a
// failed delivery: the integration log (retry_triggered, event_rejected),
// the rejected event, the error of a manual retry, and the logs.
func TestBus_stored_excerpts_hold_no_secret(t *testing.T) {
	const (
		apiKey    = "nsk_live_0123456789abcdefghij"
		headerKey = "hdr-secret-9f8e7d6c5b4a"
		token     = "query-token-1234567890"
		secretKey = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	)
	logs := &lockedBuffer{}
	tb := bustest.New(t, func(c *bus.Config) {
		c.Clock = nil // real time: one short retry
		c.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	dest := echoingDestination(t)
	tb.Create(bus.Integration{ID: "erp", Sink: webhook.Config{
		URL: dest.URL + "/hooks?token=" + token, APIKey: apiKey, SecretKey: secretKey,
		Headers: map[string]string{"X-Api-Key": headerKey}, AllowPrivateNetworks: true,
	}, Delivery: middleware.Settings{Retry: middleware.RetryPolicy{InitialInterval: 1, MaxInterval: 1}}})

	tb.MustPublish(bus.Event{ID: "e1", Name: "order.created", Payload: json.RawMessage(`{}`)})
	var entries []middleware.LogEntry
	require.Eventually(t, func() bool {
		entries, _ = tb.Integrations().Log(ctx, "erp")
		return len(entries) > 0 && entries[0].Action == middleware.ActionEventRejected
	}, 10*time.Second, 5*time.Millisecond, "the event is rejected")
	rejected, err := tb.Integrations().Rejected(ctx, "erp")
	require.NoError(t, err)
	require.Len(t, rejected, 1)
	retryErr := tb.Integrations().RetryRejected(ctx, "erp", "e1")
	require.Error(t, retryErr)
	again, err := tb.Integrations().RejectedEvent(ctx, "erp", "e1")
	require.NoError(t, err)

	texts := map[string]string{"rejected reason": rejected[0].Reason, "retried reason": again.Reason,
		"retry error": retryErr.Error(), "logs": logs.String()}
	actions := map[string]bool{}
	for i, e := range entries {
		texts[fmt.Sprintf("log entry %d (%s)", i, e.Action)] = e.Reason
		actions[e.Action] = true
	}
	require.True(t, actions[middleware.ActionRetryTriggered], "the 503 was retried: %v", entries)
	require.True(t, actions[middleware.ActionEventRejected])
	for what, text := range texts {
		for _, secret := range []string{apiKey, headerKey, token, secretKey, "Bearer n", "v1,"} {
			assert.NotContains(t, text, secret, what)
		}
	}
	assert.Contains(t, rejected[0].Reason, "Authorization: Bearer [redacted]", "the echo is kept, its secrets are not")
	assert.Contains(t, rejected[0].Reason, "X-Api-Key: [redacted]")
	assert.Contains(t, rejected[0].Reason, "token=[redacted]")
	assert.Equal(t, http.StatusBadRequest, rejected[0].StatusCode, "the failure keeps its status and class")
}
