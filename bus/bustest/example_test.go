package bustest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/bustest"
	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/replay"
)

// checkout is the application code under test: it publishes an event when
// an order is placed.
func checkout(ctx context.Context, b bus.Publisher, orderID string) error {
	payload, _ := json.Marshal(map[string]string{"order_id": orderID})
	return b.Publish(ctx, bus.Event{Name: "order.created", Payload: payload})
}

// testCheckout is how an application's test uses the kit (TestCheckout in
// kit_test.go runs it): an in-memory bus on a clock that moves only when
// told, a sink that records, and one that fails on demand.
func testCheckout(t testing.TB) {
	tb := bustest.New(t)

	// What the checkout publishes reaches an integration observing orders.
	orders := tb.Record("order.*")
	if err := checkout(context.Background(), tb, "o-1"); err != nil {
		t.Fatal(err)
	}
	if got := orders.WaitFor(t, 1); got[0].Name != "order.created" {
		t.Fatalf("got %q", got[0].Name)
	}

	// A destination answering 503 is retried after the backoff, which
	// waits on the test's clock: advance it, no sleeping.
	flaky := tb.NewSinkIntegration(bus.Integration{ID: "erp", Observes: []string{"order.*"},
		Delivery: middleware.Settings{Retry: middleware.RetryPolicy{InitialInterval: time.Second}}})
	flaky.FailNext(1, http.StatusServiceUnavailable)
	if err := checkout(context.Background(), tb, "o-2"); err != nil {
		t.Fatal(err)
	}
	if err := tb.Clock.BlockUntil(context.Background(), 1); err != nil { // the retry waits
		t.Fatal(err)
	}
	tb.Clock.Advance(time.Minute)
	flaky.WaitFor(t, 1)
	if n := flaky.Attempts(); n != 2 {
		t.Fatalf("%d attempts, want 2", n)
	}
}

// startBus is the set-up bustest.New does for a test, for the examples,
// which get no testing.T: an in-memory bus on a Clock, knowing the Sink type.
func startBus() (*bus.Bus, *bustest.Clock, func()) {
	clk := bustest.NewClock(time.Time{})
	b, err := bus.New(bus.Config{Clock: clk, Sinks: bustest.Registry()})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	<-b.Running()
	return b, clk, func() {
		cancel()
		_ = b.Close()
		<-done
	}
}

// wait is Sink.WaitFor for the examples, which get no testing.T.
func wait(s *bustest.Sink, n int) []bus.Event {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := s.Wait(ctx, n)
	if err != nil {
		panic(fmt.Sprintf("%d of %d events delivered: %v", len(got), n, err))
	}
	return got
}

// In a test, bustest.New(t) makes the bus and Bus.Record the recording
// integration (see testCheckout above); here the same pieces are put
// together by hand. The Sink records every delivery, replays marked.
func Example() {
	b, _, stop := startBus()
	defer stop()
	ctx := context.Background()

	orders := bustest.NewSink()
	if _, err := b.Integrations().Create(ctx, bus.Integration{ID: "erp", Observes: []string{"order.*"}, Sink: orders}); err != nil {
		panic(err)
	}
	if err := checkout(ctx, b, "o-1"); err != nil {
		panic(err)
	}
	_ = b.Publish(ctx, bus.Event{Name: "cart.updated"}) // not an order: not delivered
	got := wait(orders, 1)
	fmt.Println(got[0].Name, string(got[0].Payload), "replayed:", got[0].Replayed)

	job, err := b.Integrations().Replay(ctx, "erp", replay.Request{})
	if err != nil {
		panic(err)
	}
	<-job.Done
	got = wait(orders, 2)
	fmt.Println(got[1].Name, string(got[1].Payload), "replayed:", got[1].Replayed)
	fmt.Println(len(orders.Events()), "deliveries")
	// Output:
	// order.created {"order_id":"o-1"} replayed: false
	// order.created {"order_id":"o-1"} replayed: true
	// 2 deliveries
}

// A destination that answers 503 twice is retried after each backoff, on
// the test's clock; a 400 is rejected at once.
func ExampleSink_FailNext() {
	b, clk, stop := startBus()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	erp := bustest.NewSink()
	if _, err := b.Integrations().Create(ctx, bus.Integration{ID: "erp", Observes: []string{"order.*"}, Sink: erp, Concurrency: 1}); err != nil {
		panic(err)
	}
	erp.FailNext(2, http.StatusServiceUnavailable)
	_ = checkout(ctx, b, "o-1")
	for range 2 {
		if err := clk.BlockUntil(ctx, 1); err != nil { // the retry waits on the clock
			panic(err)
		}
		d, _ := clk.NextDue()
		clk.Advance(d)
	}
	got := wait(erp, 1)
	fmt.Println(got[0].Name, "delivered after", erp.Attempts(), "attempts")

	// One delivery at a time (Concurrency 1): once o-3 has arrived, o-2 is
	// settled, its rejection recorded.
	erp.FailNext(1, http.StatusBadRequest)
	_ = checkout(ctx, b, "o-2")
	_ = checkout(ctx, b, "o-3")
	got = wait(erp, 2)
	rejected, _ := b.Integrations().Rejected(ctx, "erp")
	fmt.Println(len(rejected), "rejected:", rejected[0].Reason)
	fmt.Println(string(got[1].Payload), "delivered after", erp.Attempts()-3, "more attempts")
	// Output:
	// order.created delivered after 3 attempts
	// 1 rejected: Request to URL bustest failed. Reason: bad request (HTTP status code 400)
	// {"order_id":"o-3"} delivered after 2 more attempts
}

// The Clock moves only when told to: a timer fires once the clock has been
// advanced past it, and BlockUntil tells when the code under test waits.
func ExampleClock() {
	clk := bustest.NewClock(time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC))
	fired := make(chan time.Time)
	go func() {
		t := clk.NewTimer(time.Minute) // what a retry or a rotation does
		fired <- <-t.C()
	}()
	_ = clk.BlockUntil(context.Background(), 1) // the goroutine is waiting
	clk.Advance(30 * time.Second)
	fmt.Println("after 30s:", clk.Waiters(), "timer waiting")
	clk.Advance(30 * time.Second)
	fmt.Println("fired at", (<-fired).Format(time.TimeOnly))
	fmt.Println("now", clk.Now().Format(time.TimeOnly), "with", clk.Waiters(), "timers waiting")
	// Output:
	// after 30s: 1 timer waiting
	// fired at 09:01:00
	// now 09:01:00 with 0 timers waiting
}
