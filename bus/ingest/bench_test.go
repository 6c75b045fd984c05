package ingest_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/bustest"
	"github.com/sinkbus/sinkbus/bus/ingest"
)

// BenchmarkNew_reading_back_the_window measures the start-up cost of
// deduplication across restarts: New reads a window of 100,000 events
// back from the embedded journal (half of them the application's own).
func BenchmarkNew_reading_back_the_window(b *testing.B) {
	clk := bustest.NewClock(time.Time{})
	bs, err := bus.New(bus.Config{DataDir: b.TempDir(), Clock: clk})
	if err != nil {
		b.Fatal(err)
	}
	defer bs.Close()
	const n, batch = 100_000, 1000
	events := make([]bus.Event, batch)
	for i := 0; i < n; i += batch {
		for j := range events {
			name := "be-observer.catalog_product_create"
			if j%2 == 1 {
				name = "order.created"
			}
			events[j] = bus.Event{ID: "uid-" + strconv.Itoa(i+j), Name: name, Payload: []byte(`{"sku":"PRODUCT_SKU"}`)}
		}
		if err := bs.Publish(context.Background(), events...); err != nil {
			b.Fatal(err)
		}
	}
	opts := ingest.Options{Authenticate: ingest.AllowAll(), Events: []string{"be-observer.*"}, Clock: clk, DedupeSize: n}
	b.ResetTimer()
	for range b.N {
		if _, err := ingest.New(bs, opts); err != nil {
			b.Fatal(err)
		}
	}
}
