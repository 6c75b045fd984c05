package bustest_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/bustest"
	"github.com/sinkbus/sinkbus/middleware"
)

// checkout is the application code under test: it publishes an event when
// an order is placed.
func checkout(ctx context.Context, b *bus.Bus, orderID string) error {
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
	if err := checkout(context.Background(), tb.Bus, "o-1"); err != nil {
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
	if err := checkout(context.Background(), tb.Bus, "o-2"); err != nil {
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

func Example() {
	// See testCheckout above: a test function's body, using the kit.
}
