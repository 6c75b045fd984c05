package bus_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/bustest"
	"github.com/sinkbus/sinkbus/bus/formats"
	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/webhook"
)

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// receiver is a webhook endpoint that verifies Standard Webhooks signatures.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []sinks.Envelope
	got    chan struct{}
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{got: make(chan struct{}, 100)}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if err := webhook.Verify([]string{secret}, req.Header, body, time.Now(), 0); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var env sinks.Envelope
		if err := json.Unmarshal(body, &env); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.bodies = append(r.bodies, env)
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
		r.got <- struct{}{}
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) wait(t *testing.T, n int) []sinks.Envelope {
	t.Helper()
	for range n {
		select {
		case <-r.got:
		case <-time.After(10 * time.Second):
			t.Fatal("webhook not received")
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]sinks.Envelope(nil), r.bodies...)
}

func TestBus_webhook_integration_from_elastic_path_json_delivers_signed_events(t *testing.T) {
	tb := bustest.New(t, func(c *bus.Config) { c.Clock = nil }) // signatures carry real timestamps
	rcv := newReceiver(t)
	// Elastic Path's webhook example, pointed at the local receiver.
	body := `{
		"data": {
			"type": "integration",
			"name": "Order shipping notification",
			"description": "Send a shipping notification via email with discount code.",
			"integration_type": "webhook",
			"enabled": true,
			"observes": ["order.fulfilled"],
			"configuration": {
				"url": "` + rcv.URL + `/send-shipped-email",
				"secret_key": "` + secret + `",
				"allow_private_networks": true
			}
		}
	}`
	in, _, err := formats.Create(ctx, tb.Integrations(), []byte(body))
	require.NoError(t, err)
	assert.Equal(t, "webhook", in.Type())
	assert.Equal(t, "Order shipping notification", in.Name)

	tb.MustPublish(bus.Event{ID: "evt-42", Name: "order.fulfilled", Tenant: "acme", Payload: json.RawMessage(`{"order_id":"o-1"}`)},
		bus.Event{Name: "order.created"})
	got := rcv.wait(t, 1)
	assert.Equal(t, "evt-42", got[0].ID)
	assert.Equal(t, "order.fulfilled", got[0].Name)
	assert.Equal(t, "acme", got[0].Tenant)
	assert.JSONEq(t, `{"order_id":"o-1"}`, string(got[0].Payload))
}

func TestIntegrations_secrets_are_masked_on_every_read(t *testing.T) {
	tb := bustest.New(t)
	cfg := webhook.Config{URL: "https://erp.example.com/hooks", SecretKey: secret, APIKey: "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"}
	created := tb.Create(bus.Integration{ID: "erp", Observes: []string{"order.*"}, Sink: cfg})
	got, err := tb.Integrations().Get(ctx, "erp")
	require.NoError(t, err)
	list, err := tb.Integrations().List(ctx)
	require.NoError(t, err)
	for _, in := range []bus.Integration{created, got, list[0]} {
		data, err := json.Marshal(in)
		require.NoError(t, err)
		assert.NotContains(t, string(data), secret)
		assert.NotContains(t, string(data), cfg.APIKey)
		assert.Contains(t, string(data), sinks.Mask(secret))
	}
	assert.Equal(t, sinks.Mask(secret), got.Sink.(webhook.Config).SecretKey)

	_, err = tb.Integrations().Create(ctx, bus.Integration{Sink: webhook.Config{URL: "ftp://x", SecretKey: "whsec_%%%notbase64"}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "configuration.url")
	assert.NotContains(t, err.Error(), "notbase64", "errors never quote a secret")
}

func TestIntegrations_update_keeps_secrets_sent_back_masked(t *testing.T) {
	tb := bustest.New(t, func(c *bus.Config) { c.Clock = nil })
	rcv := newReceiver(t)
	tb.Create(bus.Integration{ID: "erp", Observes: []string{"order.*"},
		Sink: webhook.Config{URL: rcv.URL, SecretKey: secret, AllowPrivateNetworks: true}})
	got, err := tb.Integrations().Get(ctx, "erp")
	require.NoError(t, err)
	got.Observes = []string{"order.fulfilled"}
	_, err = tb.Integrations().Update(ctx, "erp", got)
	require.NoError(t, err)
	tb.MustPublish(bus.Event{Name: "order.fulfilled"})
	got2 := rcv.wait(t, 1) // the receiver verifies the signature with the real secret
	assert.Equal(t, "order.fulfilled", got2[0].Name)
}
