// Command receiver is the other side of a webhook integration: an HTTP
// server that accepts sinkbus's signed requests, refuses those whose
// Standard Webhooks signature does not verify, and handles each event
// once. Deliveries are at least once (a retry after a lost response, a
// replay), so it remembers the webhook-id of what it handled.
//
//	go run ./examples/receiver -addr 127.0.0.1:8090 -secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
package main

import (
	"encoding/json"
	"flag"
	"log"
	"net/http"
	"sync"

	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/webhook"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8090", "address to listen on")
	secret := flag.String("secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "the integration's secret_key")
	flag.Parse()
	h, err := newReceiver(*secret, func(e sinks.Envelope) error {
		log.Printf("event %s %s tenant=%q replayed=%v payload=%s", e.ID, e.Name, e.Tenant, e.Replayed, e.Payload)
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("receiving on http://%s/", *addr)
	log.Fatal(http.ListenAndServe(*addr, h))
}

// newReceiver returns the handler: it verifies each request's signature
// (401 when it does not verify), decodes the envelope, and calls handle
// once per event id. An error from handle answers 500: sinkbus retries.
func newReceiver(secret string, handle func(sinks.Envelope) error) (http.Handler, error) {
	verifier, err := webhook.NewVerifier(secret) // list the previous secret too while rotating
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	seen := map[string]bool{} // a real receiver keeps these in its database
	return verifier.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var e sinks.Envelope
		if err := json.NewDecoder(r.Body).Decode(&e); err != nil {
			http.Error(w, "not a sinkbus envelope", http.StatusBadRequest)
			return
		}
		id := r.Header.Get("webhook-id") // the event id, signed
		mu.Lock()
		defer mu.Unlock()
		if !seen[id] {
			if err := handle(e); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			seen[id] = true
		}
		w.WriteHeader(http.StatusNoContent)
	})), nil
}
