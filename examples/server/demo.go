package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/webhook"
)

// demoReceiver is a webhook endpoint as an ERP would run it: it verifies
// the Standard Webhooks signature before trusting a body, and keeps the last
// events it received so that GET shows them.
type demoReceiver struct {
	logger *slog.Logger
	verify http.Handler

	mu  sync.Mutex
	got []received
}

// received is one delivery the receiver accepted.
type received struct {
	WebhookID  string         `json:"webhook_id"`
	ReceivedAt time.Time      `json:"received_at"`
	Event      sinks.Envelope `json:"event"`
	Replayed   bool           `json:"replayed,omitempty"`
}

const demoKeep = 100

func newDemoReceiver(secret string, logger *slog.Logger) (*demoReceiver, error) {
	v, err := webhook.NewVerifier(secret)
	if err != nil {
		return nil, err
	}
	d := &demoReceiver{logger: logger}
	d.verify = v.Middleware(http.HandlerFunc(d.accept))
	return d, nil
}

func (d *demoReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPost:
		d.verify.ServeHTTP(w, r)
	case http.MethodGet:
		d.mu.Lock()
		defer d.mu.Unlock()
		reply(w, http.StatusOK, map[string]any{"received": d.got})
	default:
		w.Header().Set("Allow", "GET, POST")
		reply(w, http.StatusMethodNotAllowed, map[string]string{"error": "GET or POST"})
	}
}

func (d *demoReceiver) accept(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var env sinks.Envelope
	if err := json.Unmarshal(body, &env); err != nil {
		reply(w, http.StatusBadRequest, map[string]string{"error": "not a sinkbus event"})
		return
	}
	rec := received{WebhookID: r.Header.Get("webhook-id"), ReceivedAt: time.Now().UTC(), Event: env,
		Replayed: r.Header.Get("X-Sinkbus-Replayed") == "true"}
	d.mu.Lock()
	d.got = append(d.got, rec)
	if len(d.got) > demoKeep {
		d.got = d.got[len(d.got)-demoKeep:]
	}
	d.mu.Unlock()
	d.logger.Info("demo webhook received an event", "name", env.Name, "id", env.ID, "tenant", env.Tenant)
	w.WriteHeader(http.StatusNoContent)
}
