package bus_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/bustest"
	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/replay"
	"github.com/sinkbus/sinkbus/sinks"
)

// throttleObserver records the waits the bus reports.
type throttleObserver struct {
	bus.NopObserver
	mu    sync.Mutex
	waits []time.Duration
}

func (o *throttleObserver) Throttled(id, typ string, wait time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.waits = append(o.waits, wait)
}

func (o *throttleObserver) recorded() []time.Duration {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]time.Duration(nil), o.waits...)
}

// logRecords is a slog.Handler keeping every record, for tests.
type logRecords struct {
	mu   *sync.Mutex
	recs *[]slog.Record
	with []slog.Attr
}

func newLogRecords() logRecords { return logRecords{mu: &sync.Mutex{}, recs: &[]slog.Record{}} }

func (l logRecords) Enabled(context.Context, slog.Level) bool { return true }

func (l logRecords) Handle(_ context.Context, r slog.Record) error {
	r = r.Clone()
	r.AddAttrs(l.with...)
	l.mu.Lock()
	defer l.mu.Unlock()
	*l.recs = append(*l.recs, r)
	return nil
}

func (l logRecords) WithAttrs(attrs []slog.Attr) slog.Handler {
	l.with = append(append([]slog.Attr(nil), l.with...), attrs...)
	return l
}

func (l logRecords) WithGroup(string) slog.Handler { return l }

// lines returns the records whose message is msg, each as its attributes.
func (l logRecords) lines(msg string) []map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]string
	for _, r := range *l.recs {
		if r.Message != msg {
			continue
		}
		attrs := map[string]string{"level": r.Level.String()}
		r.Attrs(func(a slog.Attr) bool {
			attrs[a.Key] = a.Value.String()
			return true
		})
		out = append(out, attrs)
	}
	return out
}

// deliveredAfterEachSecond advances the clock a second at a time, once
// n events wait for it, and returns how many events sink had after each
// step.
func deliveredAfterEachSecond(t *testing.T, tb *bustest.Bus, count func() int, waiting, steps int) []int {
	t.Helper()
	var out []int
	for i := range steps {
		require.NoError(t, tb.Clock.BlockUntil(waitCtx(t), waiting-i))
		before := count()
		tb.Clock.Advance(time.Second)
		require.Eventually(t, func() bool { return count() > before }, 10*time.Second, time.Millisecond)
		out = append(out, count())
	}
	return out
}

// Events over the limit wait for their turn on the bus clock: after the
// burst, one a second, none failed; each wait is reported, and the spell of
// throttling is logged once.
func TestIntegration_RateLimit_paces_events_and_reports_the_waits(t *testing.T) {
	obs := &throttleObserver{}
	logs := newLogRecords()
	tb := bustest.New(t, func(c *bus.Config) {
		c.Observer = obs
		c.Logger = slog.New(logs)
	})
	sink := tb.NewSinkIntegration(bus.Integration{ID: "erp", RateLimit: bus.RateLimit{PerSecond: 1, Burst: 2}})
	for i := range 5 {
		tb.MustPublish(bus.Event{ID: fmt.Sprintf("e%d", i), Name: "order.created"})
	}

	sink.WaitFor(t, 2)
	assert.Equal(t, []int{3, 4, 5}, deliveredAfterEachSecond(t, tb, func() int { return len(sink.Events()) }, 3, 3))
	assert.Equal(t, 5, sink.Attempts(), "no attempt failed")
	assert.ElementsMatch(t, []time.Duration{time.Second, 2 * time.Second, 3 * time.Second}, obs.recorded())

	entries, err := tb.Integrations().Log(ctx, "erp")
	require.NoError(t, err)
	var limited []middleware.LogEntry
	for _, e := range entries {
		if e.Action == bus.ActionRateLimited {
			limited = append(limited, e)
		}
	}
	require.Len(t, limited, 1, "one entry per spell of throttling")
	assert.Equal(t, "Deliveries wait for the rate limit of 1 events/s (burst 2).", limited[0].Reason)
	assert.NotEmpty(t, limited[0].EventID)
	lines := logs.lines("Deliveries wait for the integration's rate limit")
	require.Len(t, lines, 1)
	assert.Equal(t, "erp", lines[0]["integration_id"])
	assert.Equal(t, limited[0].EventID, lines[0]["event_id"])

	// A minute later without waits, the next wait starts a new spell.
	tb.Clock.Advance(2 * time.Minute)
	for i := range 3 {
		tb.MustPublish(bus.Event{ID: fmt.Sprintf("f%d", i), Name: "order.created"})
	}
	sink.WaitFor(t, 7)
	require.NoError(t, tb.Clock.BlockUntil(waitCtx(t), 1))
	tb.Clock.Advance(time.Second)
	sink.WaitFor(t, 8)
	entries, err = tb.Integrations().Log(ctx, "erp")
	require.NoError(t, err)
	n := 0
	for _, e := range entries {
		if e.Action == bus.ActionRateLimited {
			n++
		}
	}
	assert.Equal(t, 2, n)
}

// Replays take their turns from the same bucket as live delivery: the
// destination never gets more than the limit.
func TestIntegration_RateLimit_holds_across_live_delivery_and_replays(t *testing.T) {
	tb := bustest.New(t)
	var delivered, replayed atomic.Int32
	require.NoError(t, tb.Handle("erp", nil, func(_ context.Context, e bus.Event) error {
		delivered.Add(1)
		if e.Replayed {
			replayed.Add(1)
		}
		return nil
	}, func(in *bus.Integration) { in.RateLimit = bus.RateLimit{PerSecond: 1} }))
	tb.MustPublish(bus.Event{ID: "e1", Name: "order.created"})
	require.Eventually(t, func() bool { return delivered.Load() == 1 }, 10*time.Second, time.Millisecond)
	tb.MustPublish(bus.Event{ID: "e2", Name: "order.created"}) // waits a second
	require.NoError(t, tb.Clock.BlockUntil(waitCtx(t), 1))
	job, err := tb.Integrations().Replay(ctx, "erp", replay.Request{})
	require.NoError(t, err)
	require.Equal(t, 2, job.Matched)

	count := func() int { return int(delivered.Load()) }
	assert.Equal(t, []int{2, 3, 4}, deliveredAfterEachSecond(t, tb, count, 3, 3), "one a second, replays included")
	require.NoError(t, job.Wait(waitCtx(t)))
	assert.EqualValues(t, 2, replayed.Load())
}

// A manual retry of a rejected event waits for its turn too, and a 429
// with Retry-After is retried after it, as without a limit.
func TestIntegration_RateLimit_holds_for_manual_retries_and_keeps_retry_after(t *testing.T) {
	tb := bustest.New(t)
	sink := tb.NewSinkIntegration(bus.Integration{ID: "erp", RateLimit: bus.RateLimit{PerSecond: 1}})
	sink.FailNext(1, 400)
	tb.MustPublish(bus.Event{ID: "bad", Name: "order.created"})
	require.Eventually(t, func() bool {
		rej, err := tb.Integrations().Rejected(ctx, "erp")
		return err == nil && len(rej) == 1
	}, 10*time.Second, time.Millisecond)

	retried := make(chan error, 1)
	go func() { retried <- tb.Integrations().RetryRejected(ctx, "erp", "bad") }()
	require.NoError(t, tb.Clock.BlockUntil(waitCtx(t), 1))
	select {
	case err := <-retried:
		t.Fatalf("the retry did not wait for its turn: %v", err)
	default:
	}
	tb.Clock.Advance(time.Second)
	require.NoError(t, <-retried)
	assert.Len(t, sink.Events(), 1)

	tb.Clock.Advance(time.Minute) // a full bucket
	sink.FailNextWith(1, &sinks.StatusError{Destination: "erp", StatusCode: 429, RetryAfter: 30 * time.Second})
	tb.MustPublish(bus.Event{ID: "busy", Name: "order.created"})
	require.NoError(t, tb.Clock.BlockUntil(waitCtx(t), 1))
	next, ok := tb.Clock.NextDue()
	require.True(t, ok)
	assert.GreaterOrEqual(t, next, 30*time.Second, "the retry waits for Retry-After")
	tb.Clock.Advance(next)
	got := sink.WaitFor(t, 2)
	assert.Equal(t, "busy", got[1].ID)
	rej, err := tb.Integrations().Rejected(ctx, "erp")
	require.NoError(t, err)
	assert.Empty(t, rej)
}

// rate_limit is in the JSON form, decoded strictly, and validated with the
// rest, each problem naming its field.
func TestIntegration_RateLimit_JSON_and_validation(t *testing.T) {
	tb := bustest.New(t)
	in, err := tb.Integrations().Decode([]byte(`{"integration_type":"bustest","rate_limit":{"per_second":2.5,"burst":10}}`))
	require.NoError(t, err)
	assert.Equal(t, bus.RateLimit{PerSecond: 2.5, Burst: 10}, in.RateLimit)
	out, err := in.MarshalJSON()
	require.NoError(t, err)
	assert.Contains(t, string(out), `"rate_limit":{"per_second":2.5,"burst":10}`)
	out, err = bus.Integration{Sink: bustest.NewSink()}.MarshalJSON()
	require.NoError(t, err)
	assert.NotContains(t, string(out), "rate_limit", "no limit, no member")

	_, err = tb.Integrations().Decode([]byte(`{"integration_type":"bustest","rate_limit":{"rps":2}}`))
	assert.ErrorContains(t, err, "rate_limit.rps: unknown field")

	for _, tc := range []struct {
		limit bus.RateLimit
		want  []string
	}{
		{bus.RateLimit{PerSecond: -1, Burst: -1}, []string{"rate_limit.per_second: must be between 0 (no limit) and 1000000", "rate_limit.burst: must be between 0 and 1000000"}},
		{bus.RateLimit{Burst: 5}, []string{"rate_limit.burst: needs rate_limit.per_second"}},
		{bus.RateLimit{PerSecond: 2e6}, []string{"rate_limit.per_second: must be between"}},
	} {
		err := tb.Integrations().Validate(bus.Integration{Sink: bustest.NewSink(), RateLimit: tc.limit})
		require.ErrorIs(t, err, bus.ErrInvalid)
		for _, w := range tc.want {
			assert.Contains(t, err.Error(), w)
		}
	}
	assert.NoError(t, tb.Integrations().Validate(bus.Integration{Sink: bustest.NewSink(), RateLimit: bus.RateLimit{PerSecond: 0.5}}))
}
