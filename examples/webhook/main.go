// Command webhook is the smallest sinkbus program: one signed webhook
// integration on an in-memory bus, delivering one event to a receiver in
// the same process that verifies its signature. It imports only the webhook
// sink, so it links no SDK or broker client of the others (its size is in
// BENCHMARKS.md).
//
//	go run ./examples/webhook
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/sinks/webhook"
)

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func main() {
	if err := run(os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// run delivers one order.fulfilled event to a verifying receiver and
// writes what the receiver got to out.
func run(out io.Writer) error {
	verifier, err := webhook.NewVerifier(secret)
	if err != nil {
		return err
	}
	received := make(chan string, 1)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil || verifier.Verify(r.Header, body) != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusNoContent)
		received <- r.Header.Get("webhook-id") + " " + string(body)
	}))
	defer receiver.Close()

	b, err := bus.New(bus.Config{AllowPrivateNetworks: true}) // the receiver is on loopback
	if err != nil {
		return err
	}
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = b.Run(ctx) }()

	_, err = b.Integrations().Create(ctx, bus.Integration{
		ID:       "erp",
		Observes: []string{"order.fulfilled"},
		Sink:     webhook.Config{URL: receiver.URL, SecretKey: secret, AllowPrivateNetworks: true},
	})
	if err != nil {
		return err
	}
	err = b.Publish(ctx, bus.Event{ID: "evt-1", Name: "order.fulfilled", Tenant: "acme", Payload: []byte(`{"order":"o-1"}`)})
	if err != nil {
		return err
	}
	select {
	case got := <-received:
		_, err = fmt.Fprintln(out, "received", got)
		return err
	case <-time.After(30 * time.Second):
		return fmt.Errorf("no delivery within 30 s")
	}
}
