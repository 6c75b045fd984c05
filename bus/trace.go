package bus

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/sinkbus/sinkbus/replay"
	"github.com/sinkbus/sinkbus/sinks"
)

// The name the bus's tracer gives its instrumentation scope.
const tracerName = "github.com/sinkbus/sinkbus/bus"

// Span attributes of sinkbus's own, beside the messaging semantic
// conventions' (messaging.destination.name is the integration id,
// messaging.system its type, messaging.message.id the event id).
const (
	AttrEventName        = attribute.Key("sinkbus.event.name")
	AttrDeliveryAttempt  = attribute.Key("sinkbus.delivery.attempt")
	AttrDeliveryOutcome  = attribute.Key("sinkbus.delivery.outcome") // delivered, retryable or permanent
	AttrDeliveryReplayed = attribute.Key("sinkbus.delivery.replayed")
)

// newTracer returns the tracer of tp, nil when tp is nil: nothing traced.
func newTracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		return nil
	}
	return tp.Tracer(tracerName, trace.WithSchemaURL(semconv.SchemaURL))
}

// startPublish starts the span of one Publish, a producer span after the
// messaging conventions ("send events"). Every event of the call is
// journalled with its context (sinks.MetaTraceParent), and its deliveries
// link to it.
func (b *Bus) startPublish(ctx context.Context, events []Event) (context.Context, trace.Span) {
	attrs := []attribute.KeyValue{
		semconv.MessagingSystemKey.String("sinkbus"),
		semconv.MessagingOperationTypeSend,
		semconv.MessagingOperationName("send"),
		semconv.MessagingDestinationName(Topic),
		semconv.MessagingBatchMessageCount(len(events)),
	}
	if len(events) == 1 && events[0].ID != "" {
		attrs = append(attrs, semconv.MessagingMessageID(events[0].ID))
	}
	return b.tracer.Start(ctx, "send "+Topic, trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(attrs...))
}

// endSpan ends span with err's outcome.
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// journalTrace adds the trace context of ctx to every record's metadata.
func journalTrace(ctx context.Context, recs []*replay.Record) {
	tc := make(map[string]string, 2)
	sinks.JournalTrace(ctx, tc)
	for _, r := range recs {
		maps.Copy(r.Metadata, tc)
	}
}

// traceAttempts wraps h, the sink's Publish of one message, so that each
// delivery attempt of integration in is a span: a producer span named
// "send <integration id>", after the messaging conventions. The sink
// injects its context where the destination reads it (sinks.InjectTrace).
//
// A live delivery continues the trace its event was published in (the
// journalled context is its parent, and a link); a replay or a manual retry
// is a new cause, so it only links to it, under the caller's span if any.
func (b *Bus) traceAttempts(in Integration, h message.HandlerFunc) message.HandlerFunc {
	id, typ := in.Ref(), in.Type()
	name := "send " + id
	base := trace.WithAttributes(
		semconv.MessagingSystemKey.String(typ),
		semconv.MessagingOperationTypeSend,
		semconv.MessagingOperationName("send"),
		semconv.MessagingDestinationName(id),
	)
	kind := trace.WithSpanKind(trace.SpanKindProducer)
	return func(msg *message.Message) ([]*message.Message, error) {
		own := msg.Context()
		parent := own
		replayed := sinks.IsReplayed(msg)
		attempt, _ := strconv.Atoi(msg.Metadata.Get(sinks.MetaAttempt))
		opts := []trace.SpanStartOption{kind, base, trace.WithAttributes(
			semconv.MessagingMessageID(msg.UUID),
			AttrEventName.String(msg.Metadata.Get(sinks.MetaName)),
			AttrDeliveryAttempt.Int(attempt),
			AttrDeliveryReplayed.Bool(replayed),
		)}
		if pub := sinks.PublishedIn(msg); pub.IsValid() {
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: pub}))
			if !replayed && !trace.SpanContextFromContext(own).IsValid() {
				parent = trace.ContextWithRemoteSpanContext(own, pub)
			}
		}
		ctx, span := b.tracer.Start(parent, name, opts...)
		msg.SetContext(ctx)
		defer msg.SetContext(own)
		out, err := h(msg)
		class, _ := sinks.Classify(err)
		span.SetAttributes(AttrDeliveryOutcome.String(class.String()))
		if err != nil {
			var se *sinks.StatusError
			if errors.As(err, &se) {
				span.SetAttributes(semconv.HTTPResponseStatusCode(se.StatusCode), semconv.ErrorTypeKey.String(strconv.Itoa(se.StatusCode)))
			} else {
				span.SetAttributes(semconv.ErrorTypeKey.String(fmt.Sprintf("%T", err)))
			}
		}
		endSpan(span, err)
		return out, err
	}
}
