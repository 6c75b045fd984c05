// Package metrics exposes what a sinkbus Bus delivers as Prometheus
// metrics, per integration and sink type:
//
//	sinkbus_delivered_total{integration,type}                  events the destination accepted
//	sinkbus_attempts_failed_total{integration,type,class}      failed attempts, class retryable or permanent
//	sinkbus_retries_total{integration,type}                    attempts after the first of a delivery
//	sinkbus_rejected_total{integration,type}                   events that ended in the rejected store
//	sinkbus_skipped_total{integration,type}                    events the integration's filter did not match
//	sinkbus_skipped_while_open_total{integration,type}         events dropped by an open circuit (SkipWhileOpen)
//	sinkbus_lost_to_retention_total{integration,type}          events the journal removed before the integration read them
//	sinkbus_throttled_total{integration,type}                  events that waited for the integration's rate limit
//	sinkbus_throttled_seconds_total{integration,type}          how long they waited, in all
//	sinkbus_delivery_duration_seconds{integration,type,result} each attempt, result delivered or failed
//	sinkbus_circuit_state{integration,type,state}              1 for the breaker's state (closed, open, half-open), else 0
//	sinkbus_circuit_consecutive_failures{integration,type}     the breaker's failure count
//	sinkbus_lag_events{integration,type}                       journal events the integration has not settled
//	sinkbus_integration_running{integration,type}              1 while the integration runs
//	sinkbus_journal_damage_total{action}                       damage the journal found in DataDir: action cut (a torn tail cut off at open) or skipped (a corrupt segment read up to the damage)
//	sinkbus_journal_damage_bytes_total{action}                 the bytes of it
//	sinkbus_journal_fsync_duration_seconds                     each fsync of the journal in DataDir that made records durable
//	sinkbus_journal_fsynced_records_total                      the records they made durable (per fsync: over the histogram's count)
//
// The integration label is the integration's ref: "acme/erp-sync" for
// tenant acme's, "erp-sync" for the application's own, so that two tenants'
// integrations of the same id never share a series. The metrics are the
// application's: serve them to its own monitoring, not to tenants.
//
// The counters and the histogram are fed by the bus (Metrics is a
// bus.Observer: set it as bus.Config.Observer); the gauges are read from the
// bus when Prometheus scrapes (Watch). Series of deleted integrations are
// dropped at the next scrape.
//
// Watermill's components/metrics is not used: it labels by router handler
// name, which here is "<integration>#<generation>" and changes each time an
// integration restarts (a new series each time), and it counts messages
// rather than deliveries. These metrics are per integration and attempt.
//
//	m, _ := metrics.New(metrics.Config{})
//	b, _ := bus.New(bus.Config{Observer: m})
//	m.Watch(b)
//	mux.Handle("/metrics", m.Handler())
package metrics

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/replay/segments"
	"github.com/sinkbus/sinkbus/sinks"
)

// DefaultBuckets are the latency histogram's buckets, in seconds: from a
// millisecond to the webhook sink's 30 s timeout.
var DefaultBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// fsyncBuckets are the journal fsync histogram's buckets, in seconds: from
// a fast NVMe disk's 50 µs to a second, a disk in trouble.
var fsyncBuckets = []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1}

// Config configures the metrics. Its zero value registers on a registry of
// its own, served by Handler.
type Config struct {
	// Registerer receives the collectors. Nil means a new
	// prometheus.Registry.
	Registerer prometheus.Registerer
	// Gatherer is what Handler serves. Nil means the Registerer when it is
	// also a Gatherer (a *prometheus.Registry is), else
	// prometheus.DefaultGatherer.
	Gatherer prometheus.Gatherer
	// Namespace prefixes every metric name. Empty means "sinkbus".
	Namespace string
	// Buckets are the latency histogram's upper bounds, in seconds. Nil
	// means DefaultBuckets.
	Buckets []float64
	// ScrapeTimeout bounds the reading of the bus at a scrape. Zero means
	// 5 s.
	ScrapeTimeout time.Duration
}

func (c *Config) setDefaults() {
	if c.Registerer == nil {
		c.Registerer = prometheus.NewRegistry()
	}
	if c.Gatherer == nil {
		if g, ok := c.Registerer.(prometheus.Gatherer); ok {
			c.Gatherer = g
		} else {
			c.Gatherer = prometheus.DefaultGatherer
		}
	}
	if c.Namespace == "" {
		c.Namespace = "sinkbus"
	}
	if c.Buckets == nil {
		c.Buckets = DefaultBuckets
	}
	if c.ScrapeTimeout == 0 {
		c.ScrapeTimeout = 5 * time.Second
	}
}

// Metrics collects a bus's metrics. It is a bus.Observer; its methods are
// safe for concurrent use.
type Metrics struct {
	cfg Config

	delivered *prometheus.CounterVec
	failed    *prometheus.CounterVec
	retries   *prometheus.CounterVec
	rejected  *prometheus.CounterVec
	skipped   *prometheus.CounterVec
	dropped   *prometheus.CounterVec
	lost      *prometheus.CounterVec
	throttled *prometheus.CounterVec
	waited    *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	damage    *prometheus.CounterVec
	damaged   *prometheus.CounterVec
	fsyncs    prometheus.Histogram
	fsynced   prometheus.Counter

	circuitState    *prometheus.Desc
	circuitFailures *prometheus.Desc
	lag             *prometheus.Desc
	running         *prometheus.Desc

	mu    sync.Mutex
	b     *bus.Bus
	known sync.Map // integration ref → struct{}: refs with counter series
}

var _ bus.Observer = (*Metrics)(nil)
var _ bus.SkipCounter = (*Metrics)(nil)

// New creates the metrics and registers them on cfg.Registerer.
func New(cfg Config) (*Metrics, error) {
	cfg.setDefaults()
	ns := cfg.Namespace
	labels := []string{"integration", "type"}
	counter := func(name, help string, extra ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: name, Help: help},
			append(append([]string(nil), labels...), extra...))
	}
	desc := func(name, help string, extra ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(ns, "", name), help,
			append(append([]string(nil), labels...), extra...), nil)
	}
	m := &Metrics{
		cfg:       cfg,
		delivered: counter("delivered_total", "Events the destination accepted."),
		failed:    counter("attempts_failed_total", "Failed delivery attempts, by failure class (retryable or permanent).", "class"),
		retries:   counter("retries_total", "Delivery attempts after the first attempt of an event."),
		rejected:  counter("rejected_total", "Events stored in the rejected store (permanent failure or retries exhausted)."),
		skipped:   counter("skipped_total", "Events the integration's filter did not match."),
		dropped:   counter("skipped_while_open_total", "Events not delivered because the circuit was open and the integration skips while open."),
		lost:      counter("lost_to_retention_total", "Events the journal removed (retention, or the in-memory journal's bound) before the integration read them."),
		throttled: counter("throttled_total", "Events that waited for the integration's rate limit before their delivery."),
		waited:    counter("throttled_seconds_total", "Time events waited for the integration's rate limit, in all."),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Name: "delivery_duration_seconds",
			Help:    "Duration of each delivery attempt, by result (delivered or failed).",
			Buckets: cfg.Buckets,
		}, append(append([]string(nil), labels...), "result")),
		damage: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "journal_damage_total",
			Help: "Damage the journal found in DataDir: a torn or corrupt tail cut off at open (cut), or a corrupt segment read up to the damage (skipped)."},
			[]string{"action"}),
		damaged: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "journal_damage_bytes_total",
			Help: "Bytes of journal records lost to damage, by action (cut or skipped)."},
			[]string{"action"}),
		fsyncs: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "journal_fsync_duration_seconds",
			Help:    "Duration of each fsync of the journal in DataDir that made records durable; under the default Sync, Publish waits for one.",
			Buckets: fsyncBuckets}),
		fsynced: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "journal_fsynced_records_total",
			Help: "Journal records made durable by those fsyncs; over their count, how many publishes share an fsync."}),
		circuitState:    desc("circuit_state", "1 for the circuit breaker's current state (closed, open, half-open), 0 for the others.", "state"),
		circuitFailures: desc("circuit_consecutive_failures", "Consecutive failed attempts counted by the circuit breaker."),
		lag:             desc("lag_events", "Journal events the integration has not settled yet."),
		running:         desc("integration_running", "1 while the integration runs, 0 while it is stopped."),
	}
	for _, c := range []prometheus.Collector{m.delivered, m.failed, m.retries, m.rejected, m.skipped, m.dropped, m.lost, m.throttled, m.waited, m.latency, m.damage, m.damaged, m.fsyncs, m.fsynced, scrape{m}} {
		if err := cfg.Registerer.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Watch makes the gauges read b at each scrape. The bus must have been
// created with m as its Config.Observer for the counters to count.
func (m *Metrics) Watch(b *bus.Bus) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.b = b
}

// Handler serves the metrics in Prometheus's exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.cfg.Gatherer, promhttp.HandlerOpts{})
}

// Attempted implements bus.Observer.
func (m *Metrics) Attempted(typ string, a middleware.Attempt) {
	m.seen(a.IntegrationID)
	result := "delivered"
	switch a.Class {
	case sinks.ClassDelivered:
		m.delivered.WithLabelValues(a.IntegrationID, typ).Inc()
	default:
		result = "failed"
		m.failed.WithLabelValues(a.IntegrationID, typ, a.Class.String()).Inc()
	}
	if a.Number > 1 {
		m.retries.WithLabelValues(a.IntegrationID, typ).Inc()
	}
	m.latency.WithLabelValues(a.IntegrationID, typ, result).Observe(a.Duration.Seconds())
}

// Rejected implements bus.Observer.
func (m *Metrics) Rejected(integrationID, typ string, _ middleware.RejectedEvent) {
	m.seen(integrationID)
	m.rejected.WithLabelValues(integrationID, typ).Inc()
}

// Skipped implements bus.Observer.
func (m *Metrics) Skipped(integrationID, typ string, _ *message.Message) {
	m.seen(integrationID)
	m.skipped.WithLabelValues(integrationID, typ).Inc()
}

// SkippedEvents implements bus.SkipCounter: the bus counts skipped events
// without making messages of them.
func (m *Metrics) SkippedEvents(integrationID, typ string, n int) {
	m.seen(integrationID)
	m.skipped.WithLabelValues(integrationID, typ).Add(float64(n))
}

// SkippedWhileOpen implements bus.Observer.
func (m *Metrics) SkippedWhileOpen(integrationID, typ string, _ *message.Message) {
	m.seen(integrationID)
	m.dropped.WithLabelValues(integrationID, typ).Inc()
}

// LostToRetention implements bus.Observer.
func (m *Metrics) LostToRetention(integrationID, typ string, lost uint64) {
	m.seen(integrationID)
	m.lost.WithLabelValues(integrationID, typ).Add(float64(lost))
}

// Throttled implements bus.Observer.
func (m *Metrics) Throttled(integrationID, typ string, wait time.Duration) {
	m.seen(integrationID)
	m.throttled.WithLabelValues(integrationID, typ).Inc()
	m.waited.WithLabelValues(integrationID, typ).Add(wait.Seconds())
}

// JournalDamaged implements bus.Observer.
func (m *Metrics) JournalDamaged(d segments.Damage) {
	action := "skipped"
	if d.Cut {
		action = "cut"
	}
	m.damage.WithLabelValues(action).Inc()
	m.damaged.WithLabelValues(action).Add(float64(d.Bytes))
}

// JournalSynced implements bus.Observer.
func (m *Metrics) JournalSynced(s segments.Synced) {
	m.fsyncs.Observe(s.Took.Seconds())
	m.fsynced.Add(float64(s.Records))
}

func (m *Metrics) seen(id string) {
	if _, ok := m.known.Load(id); !ok {
		m.known.Store(id, struct{}{})
	}
}

// forget drops the counter series of the integrations that were counted
// but no longer exist. known is taken before the bus was listed, so an
// integration created since cannot be among the dropped.
func (m *Metrics) forget(known []string, exist map[string]bool) {
	for _, id := range known {
		if exist[id] {
			continue
		}
		m.known.Delete(id)
		match := prometheus.Labels{"integration": id}
		m.delivered.DeletePartialMatch(match)
		m.failed.DeletePartialMatch(match)
		m.retries.DeletePartialMatch(match)
		m.rejected.DeletePartialMatch(match)
		m.skipped.DeletePartialMatch(match)
		m.dropped.DeletePartialMatch(match)
		m.lost.DeletePartialMatch(match)
		m.throttled.DeletePartialMatch(match)
		m.waited.DeletePartialMatch(match)
		m.latency.DeletePartialMatch(match)
	}
}

// scrape is the collector of the gauges read from the bus.
type scrape struct{ m *Metrics }

var circuitStates = []string{middleware.StateClosed, middleware.StateOpen, middleware.StateHalfOpen}

func (s scrape) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{s.m.circuitState, s.m.circuitFailures, s.m.lag, s.m.running} {
		ch <- d
	}
}

func (s scrape) Collect(ch chan<- prometheus.Metric) {
	m := s.m
	m.mu.Lock()
	b := m.b
	m.mu.Unlock()
	if b == nil {
		return
	}
	var known []string
	m.known.Range(func(k, _ any) bool {
		known = append(known, k.(string))
		return true
	})
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.ScrapeTimeout)
	defer cancel()
	ints := b.Integrations()
	list, err := ints.List(ctx)
	if err != nil {
		return
	}
	exist := make(map[string]bool, len(list))
	for _, in := range list {
		id, typ := in.Ref(), in.Type()
		exist[id] = true
		running := 0.0
		if in.Status == bus.Running {
			running = 1
		}
		ch <- prometheus.MustNewConstMetric(m.running, prometheus.GaugeValue, running, id, typ)
		if st, err := ints.Circuit(ctx, id); err == nil {
			for _, state := range circuitStates {
				v := 0.0
				if st.State == state {
					v = 1
				}
				ch <- prometheus.MustNewConstMetric(m.circuitState, prometheus.GaugeValue, v, id, typ, state)
			}
			ch <- prometheus.MustNewConstMetric(m.circuitFailures, prometheus.GaugeValue, float64(st.ConsecutiveFailures), id, typ)
		}
		if lag, err := ints.Lag(ctx, id); err == nil {
			ch <- prometheus.MustNewConstMetric(m.lag, prometheus.GaugeValue, float64(lag), id, typ)
		}
	}
	m.forget(known, exist)
}
