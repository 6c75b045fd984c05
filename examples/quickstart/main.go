// Command quickstart runs sinkbus on its embedded defaults — a durable journal
// in a temporary directory, no broker — and shows the whole life of an
// integration: events delivered to a signed webhook and to an in-process
// handler, an integration stopped and catching up, and a replay by date.
//
//	go run ./examples/quickstart
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/filter"
	"github.com/sinkbus/sinkbus/replay"
	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/file"
	"github.com/sinkbus/sinkbus/sinks/webhook"
)

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

// deliveries records what every destination received, for the summary.
type deliveries struct {
	mu  sync.Mutex
	got map[string][]string
}

func (d *deliveries) add(dest, what string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.got[dest] = append(d.got[dest], what)
}

func (d *deliveries) print() {
	d.mu.Lock()
	defer d.mu.Unlock()
	dests := make([]string, 0, len(d.got))
	for k := range d.got {
		dests = append(dests, k)
	}
	sort.Strings(dests)
	for _, k := range dests {
		fmt.Printf("  %-18s %s\n", k, strings.Join(d.got[k], ", "))
	}
}

func run() error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := &deliveries{got: map[string][]string{}}

	// A webhook receiver, as an ERP would run it: it verifies the Standard
	// Webhooks signature before trusting the body.
	receiverURL, stopReceiver, err := startReceiver(got)
	if err != nil {
		return err
	}
	defer stopReceiver()

	dir, err := os.MkdirTemp("", "sinkbus-quickstart-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// The receivers of this example run on loopback.
	b, err := bus.New(bus.Config{DataDir: dir, AllowPrivateNetworks: true})
	if err != nil {
		return err
	}
	defer b.Close()
	runErr := make(chan error, 1)
	go func() { runErr <- b.Run(ctx) }()
	<-b.Running()

	// An integration from Elastic Path's own JSON.
	shipping, err := b.Integrations().CreateJSON(ctx, []byte(`{"data": {
		"type": "integration",
		"id": "shipping-notification",
		"name": "Order shipping notification",
		"integration_type": "webhook",
		"observes": ["order.fulfilled"],
		"configuration": {"url": "`+receiverURL+`/send-shipped-email", "secret_key": "`+secret+`", "allow_private_networks": true}
	}}`))
	if err != nil {
		return err
	}
	// The same in Go, for every order event above a total.
	bigOrders, err := b.Integrations().Create(ctx, bus.Integration{
		ID:       "big-orders",
		Observes: []string{"order.*"},
		Filter:   filterOver(100),
		Sink:     webhook.Config{URL: receiverURL + "/big-orders", SecretKey: secret, AllowPrivateNetworks: true},
	})
	if err != nil {
		return err
	}
	// NewStore's export: every order event as NDJSON files per tenant.
	exportDir := filepath.Join(dir, "exports", "order-export")
	if _, err := b.Integrations().Create(ctx, bus.Integration{
		ID:       "order-export",
		Observes: []string{"order.**"},
		Sink:     &file.Config{KeyPrefix: "orders"}, // under DataDir/exports/order-export
	}); err != nil {
		return err
	}
	// An in-process handler, with the same retries as a sink.
	err = b.Handle("cart-mailer", []string{"cart.*"}, func(ctx context.Context, e bus.Event) error {
		got.add("cart-mailer", e.Name)
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Printf("integrations: %s (webhook, masked secret %s), %s (webhook), cart-mailer (handler)\n",
		shipping.ID, shipping.Sink.(webhook.Config).SecretKey, bigOrders.ID)

	publish := func(events ...bus.Event) error { return b.Publish(ctx, events...) }
	start := time.Now()
	if err := publish(
		bus.Event{Name: "order.created", Tenant: "acme", Payload: order("o-1", 250)},
		bus.Event{Name: "order.fulfilled", Tenant: "acme", Payload: order("o-1", 250)},
		bus.Event{Name: "order.created", Tenant: "acme", Payload: order("o-2", 20)},
		bus.Event{Name: "cart.updated", Tenant: "acme", Payload: json.RawMessage(`{"cart_id":"c-9"}`)},
		bus.Event{Name: "customer.created", Tenant: "acme", Payload: json.RawMessage(`{"id":"u-1"}`)},
	); err != nil {
		return err
	}
	if err := settle(ctx, b); err != nil {
		return err
	}
	fmt.Println("\n1. five events published; who received what:")
	got.print()

	firstBatch := time.Now()

	fmt.Println("\n2. the shipping integration stops; two orders ship meanwhile")
	if _, err := b.Integrations().Stop(ctx, shipping.ID); err != nil {
		return err
	}
	if err := publish(
		bus.Event{Name: "order.fulfilled", Tenant: "acme", Payload: order("o-2", 20)},
		bus.Event{Name: "order.fulfilled", Tenant: "globex", Payload: order("o-3", 75)},
	); err != nil {
		return err
	}
	lag, _ := b.Integrations().Lag(ctx, shipping.ID)
	fmt.Printf("   waiting in the journal for %s: %d events\n", shipping.ID, lag)
	if _, err := b.Integrations().Start(ctx, shipping.ID); err != nil {
		return err
	}
	if err := settle(ctx, b); err != nil {
		return err
	}
	fmt.Println("   started again, it caught up:")
	got.print()

	fmt.Println("\n3. replay of the first batch's time range to the shipping integration")
	job, err := b.Integrations().Replay(ctx, shipping.ID, replay.Request{From: start, To: firstBatch})
	if err != nil {
		return err
	}
	fmt.Printf("   %s: %d matching events\n", job.ID, job.Matched)
	select {
	case <-job.Done:
	case <-time.After(10 * time.Second):
		return fmt.Errorf("replay did not finish")
	}
	got.print()

	entries, err := b.Integrations().Log(ctx, shipping.ID)
	if err != nil {
		return err
	}
	fmt.Printf("\n4. integration log of %s (newest first):\n", shipping.ID)
	for _, e := range entries {
		fmt.Printf("  %s  %-20s %s\n", e.CreatedAt.Format("15:04:05.000"), e.Action, e.Reason)
	}

	cancel()
	if err := <-runErr; err != nil {
		return err
	}
	if err := b.Close(); err != nil { // finishes the open export files
		return err
	}
	fmt.Println("\n5. export files written by order-export:")
	err = filepath.WalkDir(exportDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(exportDir, path)
		fmt.Printf("  %s: %d events\n", rel, strings.Count(string(data), "\n"))
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Println("\ndone")
	return nil
}

func order(id string, total int) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"order_id":%q,"total":%d}`, id, total))
}

// settle waits until every running integration has settled every event.
func settle(ctx context.Context, b *bus.Bus) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		list, err := b.Integrations().List(ctx)
		if err != nil {
			return err
		}
		pending := uint64(0)
		for _, in := range list {
			if in.Status == bus.Running {
				lag, _ := b.Integrations().Lag(ctx, in.ID)
				pending += lag
			}
		}
		if pending == 0 {
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("events still pending after 10s")
}

func startReceiver(got *deliveries) (string, func(), error) {
	verifier, err := webhook.NewVerifier(secret)
	if err != nil {
		return "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	h := verifier.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var env sinks.Envelope
		_ = json.Unmarshal(body, &env)
		what := env.Name
		if r.Header.Get("X-Sinkbus-Replayed") == "true" {
			what += " (replayed)"
		}
		got.add(strings.TrimPrefix(r.URL.Path, "/"), what)
		w.WriteHeader(http.StatusNoContent)
	}))
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close() }, nil
}

func filterOver(total int) filter.Conditions {
	return filter.Conditions{Payload: json.RawMessage(fmt.Sprintf(`{"total": {"$gt": %d}}`, total))}
}
