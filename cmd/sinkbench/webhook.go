package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/cmd/sinkbench/internal/bench"
)

func init() {
	register(benchCase{
		name:  "webhook",
		about: "publish → journal → filter → chain → webhook sink → net/http receiver (204), concurrency 8, vs a raw keep-alive net/http client posting the same bodies at concurrency 8",
		setup: setupWebhook,
	})
}

// latencies collects publish-to-receipt latencies read from the bodies'
// published_at, for percentiles: only in the paced phase, so that the
// rounds' receiver does the same work for both sides.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

var publishedAtKey = []byte(`"published_at":"`)

func (l *latencies) observe(body []byte) {
	i := bytes.Index(body, publishedAtKey)
	if i < 0 {
		return
	}
	rest := body[i+len(publishedAtKey):]
	end := bytes.IndexByte(rest, '"')
	if end < 0 {
		return
	}
	t, err := time.Parse(time.RFC3339Nano, string(rest[:end]))
	if err != nil {
		return
	}
	d := time.Since(t)
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

func (l *latencies) percentiles() (p50, p99 time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return 0, 0
	}
	sort.Slice(l.d, func(i, j int) bool { return l.d[i] < l.d[j] })
	return l.d[len(l.d)/2], l.d[len(l.d)*99/100]
}

func setupWebhook(quick bool) (ours, raw func() float64, cleanup func(), skip string) {
	n := 40_000
	if quick {
		n = 10_000
	}
	n -= n % bench.Concurrency

	var oursCost, rawCost bench.Cost
	recv := bench.NewReceiver()
	oursEP, rawEP := recv.Endpoint("ours"), recv.Endpoint("raw")
	lat := &latencies{}
	b, stopBus := bench.WebhookBus(bus.Config{Retention: -1, MemoryBytes: unboundedMemory}, oursEP.URL, false)
	ours = func() float64 {
		done := oursEP.Expect(int64(n))
		defer oursCost.Measure(n)()
		start := time.Now()
		bench.PublishOrders(b, n)
		<-done
		return bench.PerSecond(n, time.Since(start))
	}

	client := &http.Client{Transport: bench.IdleTransport()}
	// The very bytes the sink posts for such an event.
	body := bench.Envelope()
	raw = func() float64 {
		done := rawEP.Expect(int64(n))
		defer rawCost.Measure(n)()
		start := time.Now()
		bench.PublishAll(n, func(int) {
			bench.Must(bench.Post(context.Background(), client, rawEP.URL, body, nil))
		})
		<-done
		return bench.PerSecond(n, time.Since(start))
	}
	cleanup = func() {
		// Latency at a steady 1,000 events/s: under the rounds' full load
		// it would only measure the queue.
		oursEP.Observe(func(_ *http.Request, body []byte) { lat.observe(body) })
		paced := 2000
		if quick {
			paced = 1000
		}
		done := oursEP.Expect(int64(paced))
		tick := time.NewTicker(time.Millisecond)
		for range paced {
			<-tick.C
			bench.Must(b.Publish(context.Background(), bench.Order))
		}
		tick.Stop()
		<-done
		p50, p99 := lat.percentiles()
		stopBus()
		recv.Close()
		fmt.Printf("case=webhook connections ours=%d raw=%d\n", oursEP.Conns(), rawEP.Conns())
		fmt.Printf("case=webhook cost ours=%s raw=%s\n", &oursCost, &rawCost)
		fmt.Printf("case=webhook latency publish→receipt at 1000/s p50=%s p99=%s\n",
			p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond))
	}
	return ours, raw, cleanup, ""
}
