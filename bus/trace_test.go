package bus_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/bustest"
	"github.com/sinkbus/sinkbus/replay"
	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/webhook"
)

// tracing is an OpenTelemetry SDK whose spans end up in memory.
type tracing struct {
	exp *tracetest.InMemoryExporter
	tp  *sdktrace.TracerProvider
}

func newTracing(t *testing.T) *tracing {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return &tracing{exp: exp, tp: tp}
}

// named returns the ended spans called name, in the order they ended.
func (tr *tracing) named(name string) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, s := range tr.exp.GetSpans() {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// waitSpans waits until n spans called name have ended.
func (tr *tracing) waitSpans(t *testing.T, name string, n int) []tracetest.SpanStub {
	t.Helper()
	require.Eventually(t, func() bool { return len(tr.named(name)) >= n }, 10*time.Second, time.Millisecond,
		"%d %q spans", n, name)
	return tr.named(name)
}

// sameSpan compares span contexts, whether read back from the journal
// (remote) or not.
func sameSpan(a, b trace.SpanContext) bool {
	return a.TraceID() == b.TraceID() && a.SpanID() == b.SpanID()
}

func attrs(s tracetest.SpanStub) map[attribute.Key]attribute.Value {
	out := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes {
		out[kv.Key] = kv.Value
	}
	return out
}

// tracedReceiver is a webhook receiver that continues the trace of each
// request in a server span, as an instrumented service does, answering
// the statuses given, then 204.
type tracedReceiver struct {
	*httptest.Server
	mu       sync.Mutex
	statuses []int
	headers  []http.Header
	bodies   []string
}

func newTracedReceiver(t *testing.T, tp trace.TracerProvider, statuses ...int) *tracedReceiver {
	r := &tracedReceiver{statuses: statuses}
	tracer := tp.Tracer("receiver")
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		ctx := propagation.TraceContext{}.Extract(req.Context(), propagation.HeaderCarrier(req.Header))
		_, span := tracer.Start(ctx, "receive order", trace.WithSpanKind(trace.SpanKindServer))
		defer span.End()
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		status := http.StatusNoContent
		if len(r.statuses) > 0 {
			status, r.statuses = r.statuses[0], r.statuses[1:]
		}
		r.headers = append(r.headers, req.Header.Clone())
		r.bodies = append(r.bodies, string(body))
		r.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *tracedReceiver) requests() ([]http.Header, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]http.Header(nil), r.headers...), append([]string(nil), r.bodies...)
}

// A trace goes from the application's span through Publish, each delivery
// attempt, and the receiver that continues it; each attempt's span says
// its integration, type, attempt, outcome and status code.
func TestBus_TracerProvider_traces_publish_each_attempt_and_the_receiver(t *testing.T) {
	tr := newTracing(t)
	recv := newTracedReceiver(t, tr.tp, http.StatusServiceUnavailable)
	tb := bustest.New(t, func(c *bus.Config) { c.TracerProvider = tr.tp })
	tb.Create(bus.Integration{ID: "erp", Sink: webhook.Config{URL: recv.URL, AllowPrivateNetworks: true}})

	appCtx, app := tr.tp.Tracer("app").Start(context.Background(), "place order")
	require.NoError(t, tb.Bus.Publish(appCtx, bus.Event{ID: "o-1", Name: "order.fulfilled", Payload: []byte(`{}`)}))
	app.End()
	require.NoError(t, tb.Clock.BlockUntil(waitCtx(t), 1), "attempt 1 failed; the retry waits")
	tb.Clock.Advance(time.Hour)

	received := tr.waitSpans(t, "receive order", 2)
	attempts := tr.waitSpans(t, "send erp", 2)
	publish := tr.named("send events")
	require.Len(t, publish, 1)
	assert.Equal(t, app.SpanContext().SpanID(), publish[0].Parent.SpanID(), "Publish continues the application's trace")
	assert.Equal(t, trace.SpanKindProducer, publish[0].SpanKind)

	for i, a := range attempts {
		assert.Equal(t, app.SpanContext().TraceID(), a.SpanContext.TraceID(), "one trace")
		assert.Equal(t, publish[0].SpanContext.SpanID(), a.Parent.SpanID(), "a live delivery continues its Publish")
		require.Len(t, a.Links, 1)
		assert.True(t, sameSpan(publish[0].SpanContext, a.Links[0].SpanContext), "and links to it")
		assert.Equal(t, trace.SpanKindProducer, a.SpanKind)
		got := attrs(a)
		assert.Equal(t, "erp", got["messaging.destination.name"].AsString())
		assert.Equal(t, "webhook", got["messaging.system"].AsString())
		assert.Equal(t, "send", got["messaging.operation.type"].AsString())
		assert.Equal(t, "o-1", got["messaging.message.id"].AsString())
		assert.Equal(t, "order.fulfilled", got[bus.AttrEventName].AsString())
		assert.EqualValues(t, i+1, got[bus.AttrDeliveryAttempt].AsInt64())
		assert.Equal(t, received[i].Parent.SpanID(), a.SpanContext.SpanID(), "the receiver continues attempt %d", i+1)
	}
	first, second := attrs(attempts[0]), attrs(attempts[1])
	assert.Equal(t, "retryable", first[bus.AttrDeliveryOutcome].AsString())
	assert.EqualValues(t, 503, first["http.response.status_code"].AsInt64())
	assert.Equal(t, "503", first["error.type"].AsString())
	assert.Equal(t, codes.Error, attempts[0].Status.Code)
	assert.Equal(t, "delivered", second[bus.AttrDeliveryOutcome].AsString())
	assert.EqualValues(t, 204, second["http.response.status_code"].AsInt64())
	assert.Equal(t, codes.Unset, attempts[1].Status.Code)

	headers, bodies := recv.requests()
	assert.NotEqual(t, headers[0].Get("traceparent"), headers[1].Get("traceparent"), "each attempt sends its own span")
	assert.NotContains(t, bodies[1], "traceparent", "the trace context is a header, not the event's metadata")
	var journalled string
	require.NoError(t, tb.Events().Scan(ctx, time.Time{}, time.Time{}, func(r replay.Record) bool {
		journalled = r.Metadata[sinks.MetaTraceParent]
		return true
	}))
	assert.Contains(t, journalled, publish[0].SpanContext.SpanID().String(), "the journal keeps Publish's context")
}

// A delivery after a restart still continues the trace its event was
// published in: the context is journalled with the event.
func TestBus_TracerProvider_delivery_after_restart_continues_the_published_trace(t *testing.T) {
	dir := t.TempDir()
	recv := newTracedReceiver(t, trace.NewNoopTracerProvider())
	before := newTracing(t)
	b := startBus(t, bus.Config{DataDir: dir, TracerProvider: before.tp, AllowPrivateNetworks: true})
	_, err := b.Integrations().Create(ctx, bus.Integration{ID: "erp", Status: bus.Stopped,
		Sink: webhook.Config{URL: recv.URL, AllowPrivateNetworks: true}})
	require.NoError(t, err)
	require.NoError(t, b.Publish(ctx, bus.Event{ID: "o-1", Name: "order.fulfilled"}))
	require.NoError(t, b.Close())
	publish := before.named("send events")
	require.Len(t, publish, 1)

	after := newTracing(t)
	b = startBus(t, bus.Config{DataDir: dir, TracerProvider: after.tp, AllowPrivateNetworks: true})
	_, err = b.Integrations().Start(ctx, "erp")
	require.NoError(t, err)
	a := after.waitSpans(t, "send erp", 1)[0]
	assert.Equal(t, publish[0].SpanContext.TraceID(), a.SpanContext.TraceID())
	assert.Equal(t, publish[0].SpanContext.SpanID(), a.Parent.SpanID())
	assert.True(t, a.Parent.IsRemote())
	headers, _ := recv.requests()
	assert.Contains(t, headers[0].Get("traceparent"), publish[0].SpanContext.TraceID().String())
}

// A replay is a new cause: its attempts start a trace of their own, linked
// to the one the event was published in, and marked replayed.
func TestBus_TracerProvider_replay_links_to_the_published_trace(t *testing.T) {
	tr := newTracing(t)
	tb := bustest.New(t, func(c *bus.Config) { c.TracerProvider = tr.tp })
	var handled atomic.Int32
	var handlerSpan atomic.Value
	require.NoError(t, tb.Handle("mailer", nil, func(ctx context.Context, e bus.Event) error {
		handlerSpan.Store(trace.SpanContextFromContext(ctx))
		handled.Add(1)
		return nil
	}))
	tb.MustPublish(bus.Event{ID: "o-1", Name: "order.fulfilled"})
	live := tr.waitSpans(t, "send mailer", 1)[0]
	assert.Equal(t, live.SpanContext, handlerSpan.Load(), "a handler's context carries its attempt's span")
	replayAndWait(t, tb, "mailer", replay.Request{})

	spans := tr.waitSpans(t, "send mailer", 2)
	publish := tr.named("send events")[0]
	replayed := spans[1]
	assert.True(t, attrs(replayed)[bus.AttrDeliveryReplayed].AsBool())
	assert.NotEqual(t, publish.SpanContext.TraceID(), replayed.SpanContext.TraceID())
	require.Len(t, replayed.Links, 1)
	assert.True(t, sameSpan(publish.SpanContext, replayed.Links[0].SpanContext))
}

// Without a TracerProvider nothing is traced, journalled or sent, even
// when Publish's context carries a span.
func TestBus_without_TracerProvider_journals_and_sends_no_trace(t *testing.T) {
	tr := newTracing(t)
	recv := newTracedReceiver(t, trace.NewNoopTracerProvider())
	tb := bustest.New(t)
	tb.Create(bus.Integration{ID: "erp", Sink: webhook.Config{URL: recv.URL, AllowPrivateNetworks: true}})
	appCtx, app := tr.tp.Tracer("app").Start(context.Background(), "place order")
	require.NoError(t, tb.Bus.Publish(appCtx, bus.Event{Name: "order.fulfilled"}))
	app.End()
	waitLag(t, tb, "erp")

	headers, _ := recv.requests()
	require.Len(t, headers, 1)
	assert.Empty(t, headers[0].Get("traceparent"))
	require.NoError(t, tb.Events().Scan(ctx, time.Time{}, time.Time{}, func(r replay.Record) bool {
		assert.NotContains(t, r.Metadata, sinks.MetaTraceParent)
		return true
	}))
	assert.Len(t, tr.exp.GetSpans(), 1, "the application's span only")
}
