package sinks

import (
	"context"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Metadata keys of the trace context an event was published in: the W3C
// traceparent and tracestate of the span of Bus.Publish, journalled with
// the event so that every delivery of it (after a restart, in a replay)
// links to where it came from. They carry the reserved prefix: they are
// the bus's, not the application's metadata, so the envelope, SQS
// attributes and STOMP headers do not copy them as such. What a
// destination receives is the context of the delivery attempt instead
// (InjectTrace).
const (
	MetaTraceParent = "sinkbus_traceparent"
	MetaTraceState  = "sinkbus_tracestate"
)

// The W3C format is the one every destination's tracing reads
// (traceparent, tracestate); it is used as such rather than through
// OpenTelemetry's global propagator, which propagates nothing until an
// application sets one.
var traceContext propagation.TraceContext

// Traced reports whether ctx carries a span to propagate: inside the bus,
// when a TracerProvider is set. It costs one context lookup.
func Traced(ctx context.Context) bool {
	return trace.SpanContextFromContext(ctx).IsValid()
}

// InjectTrace writes the W3C trace context of ctx into carrier, under the
// keys "traceparent" and "tracestate" (when it has state), for the
// destination to continue the trace: a webhook's headers
// (propagation.HeaderCarrier), an SQS message's attributes, a STOMP
// frame's headers. Inside the bus, ctx is msg.Context() and its span is
// the delivery attempt's. It writes nothing when ctx has no span, and
// costs nothing more than Traced then.
func InjectTrace(ctx context.Context, carrier propagation.TextMapCarrier) {
	if !Traced(ctx) {
		return
	}
	traceContext.Inject(ctx, carrier)
}

// PublishedIn returns the trace context journalled with msg: the span of
// the Publish that published its event. It is invalid when there is none
// (published with no tracer set).
func PublishedIn(msg *message.Message) trace.SpanContext {
	if msg.Metadata.Get(MetaTraceParent) == "" {
		return trace.SpanContext{}
	}
	ctx := traceContext.Extract(context.Background(), metaCarrier(msg.Metadata))
	return trace.SpanContextFromContext(ctx)
}

// JournalTrace writes the trace context of ctx into md under
// MetaTraceParent and MetaTraceState: what Bus.Publish keeps with each
// event.
func JournalTrace(ctx context.Context, md map[string]string) {
	if !Traced(ctx) {
		return
	}
	traceContext.Inject(ctx, metaCarrier(md))
}

// metaCarrier reads and writes the W3C keys under the reserved names.
type metaCarrier map[string]string

func metaKey(key string) string {
	switch key {
	case "traceparent":
		return MetaTraceParent
	case "tracestate":
		return MetaTraceState
	}
	return MetaPrefix + key
}

func (c metaCarrier) Get(key string) string { return c[metaKey(key)] }
func (c metaCarrier) Set(key, val string)   { c[metaKey(key)] = val }
func (c metaCarrier) Keys() []string        { return []string{"traceparent", "tracestate"} }
