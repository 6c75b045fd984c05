package stomp_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/stomp"
)

// A SEND carries the W3C trace context of its message's context, in place
// of a user header of the same name.
func TestStompSink_sends_the_trace_context_as_headers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	rec := startServer(t, ln, nil)
	p := newSink(t, stomp.Config{Addresses: []string{"stomp://" + ln.Addr().String()}, Destination: "/queue/q"}, sinks.Env{})

	state, err := trace.ParseTraceState("vendor=abc")
	require.NoError(t, err)
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		SpanID:  trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8}, TraceFlags: trace.FlagsSampled, TraceState: state,
	})
	msg := event("order.created", "acme", `{}`)
	msg.Metadata.Set("traceparent", "forged")
	msg.SetContext(trace.ContextWithSpanContext(context.Background(), sc))
	require.NoError(t, p.Publish("", msg))

	h := rec.next(t).Header
	assert.Equal(t, []string{"00-0102030405060708090a0b0c0d0e0f10-0102030405060708-01"}, h.GetAll("traceparent"))
	assert.Equal(t, "vendor=abc", h.Get("tracestate"))

	plain := event("order.created", "acme", `{}`)
	require.NoError(t, p.Publish("", plain))
	_, traced := rec.next(t).Header.Contains("traceparent")
	assert.False(t, traced, "no span, no header")
}

// stompHeaders reads a received message's headers as a trace carrier.
type stompHeaders map[string]string

func (h stompHeaders) Get(k string) string { return h[k] }
func (stompHeaders) Set(string, string)    {}
func (stompHeaders) Keys() []string        { return nil }

// Through the bus to the real brokers: the message a consumer reads
// carries the context of the delivery attempt, to continue its trace.
func TestStompSink_through_the_bus_carries_the_attempts_trace(t *testing.T) {
	for name, get := range realBrokers(t) {
		t.Run(name, func(t *testing.T) {
			br := get(t)
			dest := testDest()
			ch := br.subscribe(t, dest)
			exp := tracetest.NewInMemoryExporter()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
			b := runBus(t, func(c *bus.Config) { c.TracerProvider = tp })
			_, err := b.Integrations().Create(context.Background(), bus.Integration{ID: "erp", Sink: br.config(dest)})
			require.NoError(t, err)
			require.NoError(t, b.Publish(context.Background(), bus.Event{ID: "o-1", Name: "order.created"}))

			m := readAll(t, ch, map[string]bool{"o-1": true})["o-1"]
			ctx := propagation.TraceContext{}.Extract(context.Background(), stompHeaders{"traceparent": m.Header.Get("traceparent")})
			sent := trace.SpanContextFromContext(ctx)
			require.True(t, sent.IsValid(), "traceparent %q", m.Header.Get("traceparent"))
			var attempt tracetest.SpanStub
			require.Eventually(t, func() bool { // the span ends once the receipt is in
				for _, s := range exp.GetSpans() {
					if s.Name == "send erp" {
						attempt = s
						return true
					}
				}
				return false
			}, 10*time.Second, time.Millisecond)
			assert.Equal(t, attempt.SpanContext.SpanID(), sent.SpanID())
		})
	}
}
