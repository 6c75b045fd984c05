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
	"github.com/sinkbus/sinkbus/bus/formats"
	"github.com/sinkbus/sinkbus/filter"
	"github.com/sinkbus/sinkbus/replay"
	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/file"
	"github.com/sinkbus/sinkbus/sinks/webhook"
)

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func main() {
	if _, err := run(os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// summary is what the run saw, for its test: what every destination
// received, what the receiver refused and what the integrations rejected.
type summary struct {
	// Received lists the deliveries per destination (a webhook path or a
	// handler's id), in arrival order.
	Received map[string][]delivery
	// Refused counts webhook requests whose signature did not verify.
	Refused int
	// Rejected counts rejected events per integration.
	Rejected map[string]int
	// Exported counts the events in finished export files per tenant.
	Exported map[string]int
}

// delivery is one event as a destination received it.
type delivery struct {
	Name, Tenant string
	// Replayed is the envelope's "replayed" (a handler's Event.Replayed).
	Replayed bool
}

func (d delivery) String() string {
	if d.Replayed {
		return d.Name + " (replayed)"
	}
	return d.Name
}

// deliveries records what every destination received, for the summary.
type deliveries struct {
	mu      sync.Mutex
	got     map[string][]delivery
	refused int
}

func (d *deliveries) add(dest string, what delivery) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.got[dest] = append(d.got[dest], what)
}

func (d *deliveries) refuse() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.refused++
}

func (d *deliveries) print(out io.Writer) {
	d.mu.Lock()
	defer d.mu.Unlock()
	dests := make([]string, 0, len(d.got))
	for k := range d.got {
		dests = append(dests, k)
	}
	sort.Strings(dests)
	for _, k := range dests {
		names := make([]string, len(d.got[k]))
		for i, e := range d.got[k] {
			names[i] = e.String()
		}
		fmt.Fprintf(out, "  %-18s %s\n", k, strings.Join(names, ", "))
	}
	if d.refused > 0 {
		fmt.Fprintf(out, "  refused by the receiver (bad signature): %d\n", d.refused)
	}
}

func (d *deliveries) summary() summary {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := summary{Received: map[string][]delivery{}, Refused: d.refused, Rejected: map[string]int{}, Exported: map[string]int{}}
	for k, v := range d.got {
		s.Received[k] = append([]delivery(nil), v...)
	}
	return s
}

// run runs the example, writing what happens to out.
func run(out io.Writer) (summary, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := &deliveries{got: map[string][]delivery{}}

	// A webhook receiver, as an ERP would run it: it verifies the Standard
	// Webhooks signature before trusting the body.
	receiverURL, stopReceiver, err := startReceiver(got)
	if err != nil {
		return summary{}, err
	}
	defer stopReceiver()

	dir, err := os.MkdirTemp("", "sinkbus-quickstart-")
	if err != nil {
		return summary{}, err
	}
	defer os.RemoveAll(dir)
	// The receivers of this example run on loopback.
	b, err := bus.New(bus.Config{DataDir: dir, AllowPrivateNetworks: true})
	if err != nil {
		return summary{}, err
	}
	defer b.Close()
	runErr := make(chan error, 1)
	go func() { runErr <- b.Run(ctx) }()
	<-b.Running()

	// An integration from Elastic Path's own JSON (bus/formats reads it).
	shipping, _, err := formats.Create(ctx, b.Integrations(), []byte(`{"data": {
		"type": "integration",
		"id": "shipping-notification",
		"name": "Order shipping notification",
		"integration_type": "webhook",
		"observes": ["order.fulfilled"],
		"configuration": {"url": "`+receiverURL+`/send-shipped-email", "secret_key": "`+secret+`", "allow_private_networks": true}
	}}`))
	if err != nil {
		return summary{}, err
	}
	// The same in Go, for every order event above a total.
	bigOrders, err := b.Integrations().Create(ctx, bus.Integration{
		ID:       "big-orders",
		Observes: []string{"order.*"},
		Filter:   filterOver(100),
		Sink:     webhook.Config{URL: receiverURL + "/big-orders", SecretKey: secret, AllowPrivateNetworks: true},
	})
	if err != nil {
		return summary{}, err
	}
	// NewStore's export: every order event as NDJSON files per tenant.
	exportDir := filepath.Join(dir, "exports", "order-export")
	if _, err := b.Integrations().Create(ctx, bus.Integration{
		ID:       "order-export",
		Observes: []string{"order.**"},
		Sink:     &file.Config{KeyPrefix: "orders"}, // under DataDir/exports/order-export
	}); err != nil {
		return summary{}, err
	}
	// An in-process handler, with the same retries as a sink.
	err = b.Handle("cart-mailer", []string{"cart.*"}, func(ctx context.Context, e bus.Event) error {
		got.add("cart-mailer", delivery{Name: e.Name, Tenant: e.Tenant, Replayed: e.Replayed})
		return nil
	})
	if err != nil {
		return summary{}, err
	}
	fmt.Fprintf(out, "integrations: %s (webhook, masked secret %s), %s (webhook), order-export (file), cart-mailer (handler)\n",
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
		return summary{}, err
	}
	if err := settle(ctx, b); err != nil {
		return summary{}, err
	}
	fmt.Fprintln(out, "\n1. five events published; who received what:")
	got.print(out)

	firstBatch := time.Now()

	fmt.Fprintln(out, "\n2. the shipping integration stops; two orders ship meanwhile")
	if _, err := b.Integrations().Stop(ctx, shipping.ID); err != nil {
		return summary{}, err
	}
	if err := publish(
		bus.Event{Name: "order.fulfilled", Tenant: "acme", Payload: order("o-2", 20)},
		bus.Event{Name: "order.fulfilled", Tenant: "globex", Payload: order("o-3", 75)},
	); err != nil {
		return summary{}, err
	}
	lag, _ := b.Integrations().Lag(ctx, shipping.ID)
	fmt.Fprintf(out, "   waiting in the journal for %s: %d events\n", shipping.ID, lag)
	if _, err := b.Integrations().Start(ctx, shipping.ID); err != nil {
		return summary{}, err
	}
	if err := settle(ctx, b); err != nil {
		return summary{}, err
	}
	fmt.Fprintln(out, "   started again, it caught up:")
	got.print(out)

	fmt.Fprintln(out, "\n3. replay of the first batch's time range to the shipping integration")
	job, err := b.Integrations().Replay(ctx, shipping.ID, replay.Request{From: start, To: firstBatch})
	if err != nil {
		return summary{}, err
	}
	fmt.Fprintf(out, "   %s: %s\n", job.ID, count(job.Matched, "matching event"))
	wait, stopWaiting := context.WithTimeout(ctx, 10*time.Second)
	err = job.Wait(wait)
	stopWaiting()
	if err != nil {
		return summary{}, fmt.Errorf("replay: %w", err)
	}
	got.print(out)

	entries, err := b.Integrations().Log(ctx, shipping.ID)
	if err != nil {
		return summary{}, err
	}
	fmt.Fprintf(out, "\n4. integration log of %s (newest first):\n", shipping.ID)
	for _, e := range entries {
		fmt.Fprintf(out, "  %s  %-20s %s\n", e.CreatedAt.Format("15:04:05.000"), e.Action, e.Reason)
	}

	sum := got.summary()
	list, err := b.Integrations().List(ctx)
	if err != nil {
		return summary{}, err
	}
	for _, in := range list {
		rejected, err := b.Integrations().Rejected(ctx, in.ID)
		if err != nil {
			return summary{}, err
		}
		if len(rejected) > 0 {
			sum.Rejected[in.ID] = len(rejected)
			fmt.Fprintf(out, "\n%s rejected %s; the first: %s\n", in.ID, count(len(rejected), "event"), rejected[0].Reason)
		}
	}

	cancel()
	if err := <-runErr; err != nil {
		return summary{}, err
	}
	if err := b.Close(); err != nil { // finishes the open export files
		return summary{}, err
	}
	fmt.Fprintln(out, "\n5. export files written by order-export:")
	err = filepath.WalkDir(exportDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(path) != ".export" {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(exportDir, path)
		n := strings.Count(string(data), "\n")
		sum.Exported[filepath.Base(filepath.Dir(path))] += n // {key_prefix}/{tenant}/{file}
		fmt.Fprintf(out, "  %s: %s\n", rel, count(n, "event"))
		return nil
	})
	if err != nil {
		return summary{}, err
	}
	fmt.Fprintln(out, "\ndone")
	return sum, nil
}

func count(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
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
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		if err := verifier.Verify(r.Header, body); err != nil {
			got.refuse()
			http.Error(w, "invalid signature", http.StatusUnauthorized)
			return
		}
		var env sinks.Envelope
		if err := json.Unmarshal(body, &env); err != nil {
			http.Error(w, "not a sinkbus envelope", http.StatusBadRequest)
			return
		}
		// A replay has the same id as the live delivery and says
		// "replayed":true (the X-Sinkbus-Replayed header says it too).
		got.add(strings.TrimPrefix(r.URL.Path, "/"), delivery{Name: env.Name, Tenant: env.Tenant, Replayed: env.Replayed})
		w.WriteHeader(http.StatusNoContent)
	})
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close() }, nil
}

func filterOver(total int) filter.Conditions {
	return filter.Conditions{Payload: json.RawMessage(fmt.Sprintf(`{"total": {"$gt": %d}}`, total))}
}
