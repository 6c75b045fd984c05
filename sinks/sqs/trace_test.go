package sqs_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/bustest"
	"github.com/sinkbus/sinkbus/sinks/sqs"
)

// attemptContext is a context carrying a span, as a traced delivery
// attempt's does, with trace state.
func attemptContext(t *testing.T) (context.Context, trace.SpanContext) {
	state, err := trace.ParseTraceState("vendor=abc")
	require.NoError(t, err)
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		SpanID:     trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8},
		TraceFlags: trace.FlagsSampled,
		TraceState: state,
	})
	return trace.ContextWithSpanContext(context.Background(), sc), sc
}

// The attempt's trace context takes two attributes of the ten: user
// metadata folds into one attribute sooner, never past the limit, and a
// user key of the same name does not replace it.
func TestMarshaler_attributes_carry_the_attempts_trace_within_ten(t *testing.T) {
	ctx, sc := attemptContext(t)
	for _, tc := range []struct {
		user   int
		folded bool
	}{{0, false}, {4, false}, {5, true}, {20, true}} {
		t.Run(fmt.Sprintf("%d user keys", tc.user), func(t *testing.T) {
			msg := event("order.created", "acme", `{}`)
			msg.Metadata.Set("sinkbus_replayed", "true")
			for k, v := range keys(tc.user) {
				msg.Metadata.Set(k, v)
			}
			msg.SetContext(ctx)
			m, err := sqs.Marshaler{}.Marshal(msg)
			require.NoError(t, err)
			assert.LessOrEqual(t, len(m.MessageAttributes), sqs.MaxAttributes)
			assert.Equal(t, tc.folded, m.MessageAttributes[sqs.AttrMetadata].StringValue != nil)
			got := propagation.TraceContext{}.Extract(context.Background(), attrReader(m.MessageAttributes))
			assert.True(t, sc.Equal(trace.SpanContextFromContext(got).WithRemote(false)), "traceparent and tracestate")
		})
	}

	msg := event("order.created", "acme", `{}`)
	msg.Metadata.Set("traceparent", "00-ffffffffffffffffffffffffffffffff-ffffffffffffffff-01")
	msg.SetContext(ctx)
	m, err := sqs.Marshaler{}.Marshal(msg)
	require.NoError(t, err)
	assert.Contains(t, *m.MessageAttributes["traceparent"].StringValue, sc.TraceID().String())
}

// attrReader reads SQS message attributes as a trace carrier.
type attrReader map[string]types.MessageAttributeValue

func (a attrReader) Get(k string) string {
	if v, ok := a[k]; ok && v.StringValue != nil {
		return *v.StringValue
	}
	return ""
}
func (attrReader) Set(string, string) {}
func (attrReader) Keys() []string     { return nil }

// Through the bus to the real SQS server: the message's attributes carry
// the context of the attempt that sent it, for the consumer to continue.
func TestSQSIntegration_message_carries_the_attempts_trace_context(t *testing.T) {
	endpoint := sqsEndpoint(t)
	queue := newQueue(t, endpoint, false, nil)
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	d := newDeliveries()
	tb := bustest.New(t, func(c *bus.Config) { c.Observer = d; c.TracerProvider = tp })
	tb.Create(bus.Integration{ID: "orders-to-sqs", Sink: config(queue)})
	tb.MustPublish(bus.Event{ID: "o-1", Name: "order.fulfilled", Metadata: map[string]string{"channel": "web"}})
	d.waitDelivered(t, 1)

	got := drain(t, endpoint, queue)
	require.Len(t, got, 1)
	sent := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), attrReader(got[0].MessageAttributes)))
	require.True(t, sent.IsValid())
	var attempt tracetest.SpanStub
	for _, s := range exp.GetSpans() {
		if s.Name == "send orders-to-sqs" {
			attempt = s
		}
	}
	assert.Equal(t, attempt.SpanContext.SpanID(), sent.SpanID(), "the consumer's parent is the attempt")
	assert.Equal(t, "aws_sqs", attrValue(attempt, "messaging.system"))
	assert.Equal(t, "web", *got[0].MessageAttributes["channel"].StringValue)
}

func attrValue(s tracetest.SpanStub, key string) string {
	for _, kv := range s.Attributes {
		if string(kv.Key) == key {
			return kv.Value.Emit()
		}
	}
	return ""
}
