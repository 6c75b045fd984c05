package metrics_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/bustest"
	"github.com/sinkbus/sinkbus/bus/metrics"
	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/sinks/webhook"
)

var ctx = context.Background()

// endpoint is a webhook receiver answering status and counting requests.
type endpoint struct {
	*httptest.Server
	mu  sync.Mutex
	n   int
	got chan struct{}
}

func newEndpoint(t *testing.T, status int) *endpoint {
	e := &endpoint{got: make(chan struct{}, 100)}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(status)
		e.mu.Lock()
		e.n++
		e.mu.Unlock()
		e.got <- struct{}{}
	}))
	t.Cleanup(e.Close)
	return e
}

func (e *endpoint) wait(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-e.got:
		case <-time.After(10 * time.Second):
			t.Fatal("the endpoint got no request in 10s")
		}
	}
}

// value reads one sample from reg: a counter's or gauge's value, or a
// histogram's sample count; -1 when there is no such series.
func value(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue next
				}
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				return m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				return m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return -1
}

func lbl(id, typ string, kv ...string) map[string]string {
	m := map[string]string{"integration": id, "type": typ}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// waitSettled waits until every integration has settled every event.
func waitSettled(t *testing.T, b *bus.Bus) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		list, err := b.Integrations().List(ctx)
		require.NoError(t, err)
		behind := false
		for _, in := range list {
			lag, err := b.Integrations().Lag(ctx, in.ID)
			require.NoError(t, err)
			behind = behind || (lag > 0 && in.Status == bus.Running)
		}
		if !behind {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("integrations still behind after 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestMetrics_count_what_was_delivered_rejected_retried_and_skipped(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(metrics.Config{Registerer: reg})
	require.NoError(t, err)
	tb := bustest.New(t, func(c *bus.Config) {
		c.Observer = m
		c.Clock = nil // real backoffs of a millisecond
	})
	m.Watch(tb.Bus)

	ok := newEndpoint(t, http.StatusNoContent)
	refuses := newEndpoint(t, http.StatusBadRequest)
	tb.Create(bus.Integration{ID: "orders", Observes: []string{"order.*"},
		Sink: webhook.Config{URL: ok.URL, AllowPrivateNetworks: true}})
	tb.Create(bus.Integration{ID: "refused",
		Sink: webhook.Config{URL: refuses.URL, AllowPrivateNetworks: true}})
	flaky := tb.NewSinkIntegration(bus.Integration{ID: "flaky", Observes: []string{"order.created"},
		Delivery: middleware.Settings{Retry: middleware.RetryPolicy{InitialInterval: time.Millisecond, MaxInterval: time.Millisecond}}})
	flaky.FailNext(2, http.StatusServiceUnavailable)

	tb.MustPublish(
		bus.Event{Name: "order.created"}, bus.Event{Name: "order.created"}, bus.Event{Name: "order.fulfilled"},
		bus.Event{Name: "cart.updated"}, bus.Event{Name: "cart.updated"},
	)
	ok.wait(t, 3)
	refuses.wait(t, 5)
	flaky.WaitFor(t, 2)
	waitSettled(t, tb.Bus)

	const name = "sinkbus_"
	assert.Equal(t, 3.0, value(t, reg, name+"delivered_total", lbl("orders", "webhook")))
	assert.Equal(t, 2.0, value(t, reg, name+"skipped_total", lbl("orders", "webhook")))
	assert.Equal(t, -1.0, value(t, reg, name+"rejected_total", lbl("orders", "webhook")))
	assert.Equal(t, 3.0, value(t, reg, name+"delivery_duration_seconds", lbl("orders", "webhook", "result", "delivered")))

	assert.Equal(t, -1.0, value(t, reg, name+"delivered_total", lbl("refused", "webhook")))
	assert.Equal(t, 5.0, value(t, reg, name+"rejected_total", lbl("refused", "webhook")))
	assert.Equal(t, 5.0, value(t, reg, name+"attempts_failed_total", lbl("refused", "webhook", "class", "permanent")))
	assert.Equal(t, 5.0, value(t, reg, name+"delivery_duration_seconds", lbl("refused", "webhook", "result", "failed")))
	rejected, err := tb.Integrations().Rejected(ctx, "refused")
	require.NoError(t, err)
	assert.Len(t, rejected, 5, "the counter equals the rejected store")

	assert.Equal(t, 2.0, value(t, reg, name+"delivered_total", lbl("flaky", "bustest")))
	assert.Equal(t, 2.0, value(t, reg, name+"attempts_failed_total", lbl("flaky", "bustest", "class", "retryable")))
	assert.Equal(t, 2.0, value(t, reg, name+"retries_total", lbl("flaky", "bustest")))
	assert.Equal(t, 3.0, value(t, reg, name+"skipped_total", lbl("flaky", "bustest")))
	assert.Equal(t, flaky.Attempts(), 4)
	assert.Len(t, flaky.Events(), 2, "the counter equals what the sink holds")
	ok.mu.Lock()
	assert.Equal(t, 3, ok.n, "the counter equals what the endpoint received")
	ok.mu.Unlock()

	for _, id := range []string{"orders", "refused", "flaky"} {
		typ := map[string]string{"orders": "webhook", "refused": "webhook", "flaky": "bustest"}[id]
		assert.Equal(t, 0.0, value(t, reg, name+"lag_events", lbl(id, typ)), id)
		assert.Equal(t, 1.0, value(t, reg, name+"integration_running", lbl(id, typ)), id)
		assert.Equal(t, 1.0, value(t, reg, name+"circuit_state", lbl(id, typ, "state", "closed")), id)
		assert.Equal(t, 0.0, value(t, reg, name+"circuit_state", lbl(id, typ, "state", "open")), id)
	}

	// A retried rejected event counts as an attempt like any other.
	require.Error(t, tb.Integrations().RetryRejected(ctx, "refused", rejected[0].EventID))
	refuses.wait(t, 1)
	assert.Equal(t, 6.0, value(t, reg, name+"attempts_failed_total", lbl("refused", "webhook", "class", "permanent")))

	// The handler serves them; a deleted integration's series go.
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	body := scrapeText(t, srv)
	assert.Contains(t, body, `sinkbus_delivered_total{integration="orders",type="webhook"} 3`)
	assert.Contains(t, body, `sinkbus_lag_events{integration="flaky",type="bustest"} 0`)
	assert.Contains(t, body, `sinkbus_rejected_total{integration="refused",type="webhook"} 5`)
	require.NoError(t, tb.Integrations().Delete(ctx, "refused"))
	scrapeText(t, srv) // notices the deletion
	assert.NotContains(t, scrapeText(t, srv), `integration="refused"`)
}

func scrapeText(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	resp, err := srv.Client().Get(srv.URL)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(body)
}

func TestMetrics_gauges_show_lag_of_a_stopped_integration_and_an_open_circuit(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(metrics.Config{Registerer: reg, Namespace: "shop"})
	require.NoError(t, err)
	tb := bustest.New(t, func(c *bus.Config) { c.Observer = m })
	m.Watch(tb.Bus)

	tb.NewSinkIntegration(bus.Integration{ID: "paused", Status: bus.Stopped})
	broken := tb.NewSinkIntegration(bus.Integration{ID: "broken", Concurrency: 1, Delivery: middleware.Settings{
		Breaker: middleware.BreakerPolicy{WarnAfter: 1, OpenAfter: 1}}})
	broken.FailNext(1, http.StatusServiceUnavailable)
	tb.MustPublish(bus.Event{Name: "order.created"}, bus.Event{Name: "order.created"})

	require.NoError(t, tb.Clock.BlockUntil(ctx, 1)) // the failed attempt's retry waits
	assert.Equal(t, 2.0, value(t, reg, "shop_lag_events", lbl("paused", "bustest")))
	assert.Equal(t, 0.0, value(t, reg, "shop_integration_running", lbl("paused", "bustest")))
	assert.Equal(t, 1.0, value(t, reg, "shop_circuit_state", lbl("broken", "bustest", "state", "open")))
	assert.Equal(t, 0.0, value(t, reg, "shop_circuit_state", lbl("broken", "bustest", "state", "closed")))
	assert.Equal(t, 1.0, value(t, reg, "shop_circuit_consecutive_failures", lbl("broken", "bustest")))
	assert.Equal(t, 1.0, value(t, reg, "shop_attempts_failed_total", lbl("broken", "bustest", "class", "retryable")))
}

func TestNew_refuses_to_register_twice(t *testing.T) {
	reg := prometheus.NewRegistry()
	_, err := metrics.New(metrics.Config{Registerer: reg})
	require.NoError(t, err)
	_, err = metrics.New(metrics.Config{Registerer: reg})
	assert.Error(t, err)
	m, err := metrics.New(metrics.Config{})
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.True(t, strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain"))
}

func TestMetrics_count_events_skipped_while_the_circuit_is_open(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(metrics.Config{Registerer: reg})
	require.NoError(t, err)
	tb := bustest.New(t, func(c *bus.Config) {
		c.Observer = m
		c.Clock = nil // real backoffs of a millisecond; the cool-down is far longer than the test
	})
	skipping := tb.NewSinkIntegration(bus.Integration{ID: "skipping", Concurrency: 1, Delivery: middleware.Settings{
		Retry:   middleware.RetryPolicy{InitialInterval: time.Millisecond, MaxInterval: time.Millisecond},
		Breaker: middleware.BreakerPolicy{WarnAfter: 1, OpenAfter: 1, CoolDown: time.Hour, MaxCoolDown: time.Hour, SkipWhileOpen: true}}})
	skipping.FailNext(1, http.StatusServiceUnavailable)
	tb.MustPublish(bus.Event{Name: "order.created"}, bus.Event{Name: "order.created"}, bus.Event{Name: "order.created"})
	waitSettled(t, tb.Bus)

	entries, err := tb.Integrations().Log(ctx, "skipping")
	require.NoError(t, err)
	logged := 0
	for _, e := range entries {
		if e.Action == middleware.ActionEventSkipped {
			logged++
		}
	}
	require.Positive(t, logged, "the open circuit skipped events")
	assert.Equal(t, float64(logged), value(t, reg, "sinkbus_skipped_while_open_total", lbl("skipping", "bustest")))
	assert.Equal(t, -1.0, value(t, reg, "sinkbus_skipped_total", lbl("skipping", "bustest")), "filter skips are another count")

	// Every event is counted once, as what became of it: delivered (what the
	// sink holds), rejected (what the store holds) or skipped while open.
	rejected, err := tb.Integrations().Rejected(ctx, "skipping")
	require.NoError(t, err)
	counted := func(name string) int {
		if v := value(t, reg, name, lbl("skipping", "bustest")); v > 0 {
			return int(v)
		}
		return 0
	}
	assert.Equal(t, len(skipping.Events()), counted("sinkbus_delivered_total"))
	assert.Equal(t, len(rejected), counted("sinkbus_rejected_total"))
	assert.Equal(t, 3, counted("sinkbus_delivered_total")+counted("sinkbus_rejected_total")+
		counted("sinkbus_skipped_while_open_total"), "3 published")
}

// Events an in-memory bus removed before a stopped integration read them
// are counted for that integration, as its log counts them.
func TestMetrics_count_events_lost_to_the_in_memory_bound(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(metrics.Config{Registerer: reg})
	require.NoError(t, err)
	tb := bustest.New(t, func(c *bus.Config) {
		c.Observer = m
		c.MemoryBytes = 32 << 10
	})
	m.Watch(tb.Bus)
	stopped := tb.NewSinkIntegration(bus.Integration{ID: "stopped", Status: bus.Stopped})
	payload := []byte(`{"pad":"` + strings.Repeat("x", 1000) + `"}`)
	for range 100 {
		tb.MustPublish(bus.Event{Name: "order.created", Payload: payload})
	}
	_, err = tb.Integrations().Start(ctx, "stopped")
	require.NoError(t, err)
	waitSettled(t, tb.Bus)

	delivered := len(stopped.Events())
	require.Positive(t, delivered)
	assert.Equal(t, float64(100-delivered), value(t, reg, "sinkbus_lost_to_retention_total", lbl("stopped", "bustest")))
	entries, err := tb.Integrations().Log(ctx, "stopped")
	require.NoError(t, err)
	var reasons []string
	for _, e := range entries {
		if e.Action == middleware.ActionRetentionLoss {
			reasons = append(reasons, e.Reason)
		}
	}
	require.Len(t, reasons, 1)
	assert.True(t, strings.HasPrefix(reasons[0], fmt.Sprintf("%d events ", 100-delivered)), reasons[0])
}

// Events that wait for their integration's rate limit are counted, with
// the time they waited.
func TestMetrics_count_events_throttled_by_the_rate_limit(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(metrics.Config{Registerer: reg})
	require.NoError(t, err)
	tb := bustest.New(t, func(c *bus.Config) { c.Observer = m })
	m.Watch(tb.Bus)
	sink := tb.NewSinkIntegration(bus.Integration{ID: "erp", RateLimit: bus.RateLimit{PerSecond: 2}})
	tb.MustPublish(bus.Event{Name: "order.created"}, bus.Event{Name: "order.created"}, bus.Event{Name: "order.created"})
	require.NoError(t, tb.Clock.BlockUntil(ctx, 2))
	tb.Clock.Advance(time.Second)
	sink.WaitFor(t, 3)

	assert.Equal(t, 2.0, value(t, reg, "sinkbus_throttled_total", lbl("erp", bustest.SinkType)))
	assert.Equal(t, 1.5, value(t, reg, "sinkbus_throttled_seconds_total", lbl("erp", bustest.SinkType)), "waits of 0.5 s and 1 s")
}

// A torn journal tail cut off when the bus opens is counted, with its bytes.
func TestMetrics_count_journal_damage(t *testing.T) {
	dir := t.TempDir()
	b, err := bus.New(bus.Config{DataDir: dir, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	require.NoError(t, b.Publish(ctx, bus.Event{Name: "order.created"}))
	require.NoError(t, b.Close())
	f, err := os.OpenFile(filepath.Join(dir, "journal", bus.Topic, "00000000000000000001.seg"), os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.Write([]byte{200, 0, 0, 0, 9, 9, 9}) // a record cut short by a crash
	require.NoError(t, err)
	require.NoError(t, f.Close())

	reg := prometheus.NewRegistry()
	m, err := metrics.New(metrics.Config{Registerer: reg})
	require.NoError(t, err)
	b, err = bus.New(bus.Config{DataDir: dir, Observer: m, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	defer b.Close()
	assert.Equal(t, 1.0, value(t, reg, "sinkbus_journal_damage_total", map[string]string{"action": "cut"}))
	assert.Equal(t, 7.0, value(t, reg, "sinkbus_journal_damage_bytes_total", map[string]string{"action": "cut"}))
}

// Each publish waits for its own fsync here (one publisher, default Sync):
// as many fsyncs as publishes, each of one record, counted before Publish
// returns.
func TestMetrics_count_journal_fsyncs_and_the_records_they_made_durable(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(metrics.Config{Registerer: reg})
	require.NoError(t, err)
	b, err := bus.New(bus.Config{DataDir: t.TempDir(), Observer: m, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	defer b.Close()
	for i := range 5 {
		require.NoError(t, b.Publish(ctx, bus.Event{Name: "order.created"}))
		assert.Equal(t, float64(i+1), value(t, reg, "sinkbus_journal_fsynced_records_total", nil))
		assert.Equal(t, float64(i+1), value(t, reg, "sinkbus_journal_fsync_duration_seconds", nil))
	}
	require.NoError(t, b.Publish(ctx, bus.Event{Name: "order.created"}, bus.Event{Name: "order.paid"}))
	assert.Equal(t, 7.0, value(t, reg, "sinkbus_journal_fsynced_records_total", nil))
	assert.Equal(t, 6.0, value(t, reg, "sinkbus_journal_fsync_duration_seconds", nil), "one fsync for both events of a Publish")
}
