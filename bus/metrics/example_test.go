package metrics_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/metrics"
)

// The metrics observe the bus, read its gauges at each scrape, and are
// served on /metrics.
func Example() {
	m, err := metrics.New(metrics.Config{})
	if err != nil {
		log.Fatal(err)
	}
	b, err := bus.New(bus.Config{Observer: m})
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	m.Watch(b)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = b.Run(ctx) }()
	<-b.Running()
	err = b.Handle("audit", []string{"order.*"}, func(ctx context.Context, e bus.Event) error { return nil })
	if err != nil {
		log.Fatal(err)
	}
	if err := b.Publish(ctx, bus.Event{Name: "order.created"}, bus.Event{Name: "cart.updated"}); err != nil {
		log.Fatal(err)
	}
	for lag, _ := b.Integrations().Lag(ctx, "audit"); lag > 0; lag, _ = b.Integrations().Lag(ctx, "audit") {
		time.Sleep(time.Millisecond)
	}

	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/metrics")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(text), "\n") {
		if strings.HasPrefix(line, "sinkbus_delivered_total") || strings.HasPrefix(line, "sinkbus_skipped_total") ||
			strings.HasPrefix(line, "sinkbus_lag_events") {
			fmt.Println(line)
		}
	}
	// Output:
	// sinkbus_delivered_total{integration="audit",type="handler"} 1
	// sinkbus_lag_events{integration="audit",type="handler"} 0
	// sinkbus_skipped_total{integration="audit",type="handler"} 1
}
