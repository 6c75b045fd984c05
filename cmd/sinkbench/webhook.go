package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/webhook"
)

func init() {
	register(benchCase{
		name:  "webhook",
		about: "publish → journal → filter → chain → webhook sink → net/http receiver (204), concurrency 8, vs a raw keep-alive net/http client posting the same bodies at concurrency 8",
		setup: setupWebhook,
	})
}

// latencies collects publish-to-receipt latencies read from the bodies'
// published_at, for percentiles, while on: only in the paced phase, so
// that the rounds' receivers do the same work on both sides.
type latencies struct {
	on atomic.Bool
	mu sync.Mutex
	d  []time.Duration
}

var publishedAtKey = []byte(`"published_at":"`)

func (l *latencies) observe(body []byte) {
	if !l.on.Load() {
		return
	}
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

func (l *latencies) reset() {
	l.mu.Lock()
	l.d = l.d[:0]
	l.mu.Unlock()
}

// startReceiver serves 204 on loopback, counting requests with c.
func startReceiver(c *counter, lat *latencies) (url string, stop func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if lat != nil {
			lat.observe(body)
		}
		w.WriteHeader(http.StatusNoContent)
		c.hit()
	}), ConnState: func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			c.conns.Add(1)
		}
	}}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close() }
}

// cost adds up the process's CPU time and allocations over one side's
// rounds. CPU per event is steadier than the rate on a shared machine.
type cost struct {
	cpu    time.Duration
	allocs uint64
	events int
}

// measure starts measuring a round of n events; call the result at its end.
func (c *cost) measure(n int) (end func()) {
	cpu0, m0 := cpuTime(), mallocs()
	return func() {
		c.cpu += cpuTime() - cpu0
		c.allocs += mallocs() - m0
		c.events += n
	}
}

func (c *cost) String() string {
	if c.events == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1fµs cpu, %d allocs per event",
		float64(c.cpu.Microseconds())/float64(c.events), c.allocs/uint64(c.events))
}

func mallocs() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Mallocs
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func setupWebhook(quick bool) (ours, raw func() float64, cleanup func(), skip string) {
	n := 40_000
	if quick {
		n = 10_000
	}
	n -= n % publishers

	var oursCost, rawCost cost
	oc, lat := &counter{}, &latencies{}
	oursURL, stopOurs := startReceiver(oc, lat)
	b, stopBus := runBus(bus.Config{Retention: -1, MemoryBytes: unboundedMemory, AllowPrivateNetworks: true})
	_, err := b.Integrations().Create(context.Background(), bus.Integration{
		ID: "erp", Observes: []string{"order.*"}, Concurrency: publishers,
		Sink: webhook.Config{URL: oursURL + "/hook", SecretKey: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", AllowPrivateNetworks: true},
	})
	must(err)
	ours = func() float64 {
		done := oc.expect(int64(n))
		defer oursCost.measure(n)()
		start := time.Now()
		publishAll(n, func(int) {
			must(b.Publish(context.Background(), bus.Event{Name: "order.created", Payload: payload1K}))
		})
		<-done
		return perSecond(n, time.Since(start))
	}

	rc := &counter{}
	rawURL, stopRaw := startReceiver(rc, nil)
	// The same idle headroom as the sink's (two per delivery in flight).
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: publishers * 2, MaxIdleConns: 100}}
	// The very bytes the sink posts for such an event: the envelope of the
	// message the bus hands it.
	body := sinks.AppendEnvelope(nil, busMessage())
	raw = func() float64 {
		done := rc.expect(int64(n))
		defer rawCost.measure(n)()
		start := time.Now()
		publishAll(n, func(int) {
			req, err := http.NewRequest(http.MethodPost, rawURL+"/hook", bytes.NewReader(body))
			must(err)
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			must(err)
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		})
		<-done
		return perSecond(n, time.Since(start))
	}
	cleanup = func() {
		// Latency at a steady 1,000 events/s: under the rounds' full load
		// it would only measure the queue.
		lat.reset()
		lat.on.Store(true)
		paced := 2000
		if quick {
			paced = 1000
		}
		done := oc.expect(int64(paced))
		tick := time.NewTicker(time.Millisecond)
		for range paced {
			<-tick.C
			must(b.Publish(context.Background(), bus.Event{Name: "order.created", Payload: payload1K}))
		}
		tick.Stop()
		<-done
		p50, p99 := lat.percentiles()
		stopBus()
		stopOurs()
		stopRaw()
		fmt.Printf("case=webhook connections ours=%d raw=%d\n", oc.conns.Load(), rc.conns.Load())
		fmt.Printf("case=webhook cost ours=%s raw=%s\n", &oursCost, &rawCost)
		fmt.Printf("case=webhook latency publish→receipt at 1000/s p50=%s p99=%s\n",
			p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond))
	}
	return ours, raw, cleanup, ""
}
