package pubsub_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/bustest"
	"github.com/sinkbus/sinkbus/bus/formats"
	"github.com/sinkbus/sinkbus/field"
	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/pubsub"
)

var ctx = context.Background()

// channelSettings configure an integration publishing to an in-process
// Watermill GoChannel, the Pub/Sub the tests read back from.
type channelSettings struct {
	Topic string `json:"topic"`
	Token string `json:"token,omitempty"`
}

func (s channelSettings) Validate() error {
	var p field.Problems
	if s.Topic == "" {
		p.Add("topic", "required")
	}
	return p.Err()
}

func (s channelSettings) Masked() channelSettings {
	s.Token = sinks.Mask(s.Token)
	return s
}

// channel is a Type publishing to one GoChannel, and that channel.
type channel struct {
	typ    *pubsub.Type[channelSettings]
	pubsub *gochannel.GoChannel
	built  atomic.Int32 // publishers New built
}

func newChannel(t *testing.T) *channel {
	c := &channel{pubsub: gochannel.NewGoChannel(gochannel.Config{Persistent: true}, watermill.NopLogger{})}
	t.Cleanup(func() { _ = c.pubsub.Close() })
	c.typ = &pubsub.Type[channelSettings]{
		Name: "channel",
		New: func(channelSettings, sinks.Env) (message.Publisher, error) {
			c.built.Add(1)
			return nopClose{c.pubsub}, nil
		},
		Topic: func(s channelSettings, _ *message.Message) string { return s.Topic },
	}
	return c
}

// busWith is a test bus that knows typ.
func busWith(t *testing.T, typ sinks.Type, opts ...func(*bus.Config)) *bustest.Bus {
	reg := bustest.Registry()
	require.NoError(t, reg.Register(typ))
	return bustest.New(t, append([]func(*bus.Config){func(c *bus.Config) { c.Sinks = reg }}, opts...)...)
}

func receive(t *testing.T, ch <-chan *message.Message) *message.Message {
	t.Helper()
	select {
	case m := <-ch:
		m.Ack()
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("nothing published in 10s")
		return nil
	}
}

// An integration of a Type, created in Go or from JSON, publishes each
// event it observes as a message: the event id as UUID, the envelope as
// payload, the event's metadata.
func TestType_integration_publishes_each_observed_event(t *testing.T) {
	c := newChannel(t)
	tb := busWith(t, c.typ.SinkType())
	msgs, err := c.pubsub.Subscribe(ctx, "orders")
	require.NoError(t, err)

	tb.Create(bus.Integration{ID: "typed", Observes: []string{"order.*"}, Sink: c.typ.Config(channelSettings{Topic: "orders"})})
	in, _, err := formats.Create(ctx, tb.Integrations(), []byte(`{"id":"from-json","integration_type":"channel",
		"observes":["order.*"],"configuration":{"topic":"orders","token":"secret-token-1234"}}`))
	require.NoError(t, err)
	assert.Equal(t, `{"topic":"orders","token":"****1234"}`, string(mustJSON(t, in.Sink)), "read back masked")

	tb.MustPublish(bus.Event{ID: "o-1", Name: "order.fulfilled", Tenant: "acme", Payload: []byte(`{"n":1}`),
		Metadata: map[string]string{"channel": "web"}})
	tb.MustPublish(bus.Event{ID: "c-1", Name: "cart.updated"}) // observed by neither

	for range 2 {
		m := receive(t, msgs)
		assert.Equal(t, "o-1", m.UUID)
		var env sinks.Envelope
		require.NoError(t, json.Unmarshal(m.Payload, &env))
		assert.Equal(t, sinks.Envelope{ID: "o-1", Name: "order.fulfilled", Tenant: "acme",
			PublishedAt: env.PublishedAt, Payload: json.RawMessage(`{"n":1}`), Metadata: map[string]string{"channel": "web"}}, env)
		assert.Equal(t, "web", m.Metadata.Get("channel"))
		assert.Equal(t, "order.fulfilled", m.Metadata.Get(sinks.MetaName))
		assert.Equal(t, "acme", m.Metadata.Get(sinks.MetaTenant))
		assert.NotEmpty(t, m.Metadata.Get(sinks.MetaPublishedAt))
		assert.Empty(t, m.Metadata.Get(sinks.MetaAttempt))
	}
	select {
	case m := <-msgs:
		t.Fatalf("unexpected message %s", m.UUID)
	case <-time.After(50 * time.Millisecond):
	}
	assert.EqualValues(t, 2, c.built.Load())
}

// The settings' Validate and the strict decoder report every problem, each
// naming its field.
func TestType_settings_are_validated_and_decoded_strictly(t *testing.T) {
	c := newChannel(t)
	tb := busWith(t, c.typ.SinkType())
	_, err := tb.Integrations().Create(ctx, bus.Integration{Sink: c.typ.Config(channelSettings{})})
	require.ErrorIs(t, err, bus.ErrInvalid)
	assert.Contains(t, err.Error(), "configuration.topic: required")

	_, err = tb.Integrations().Decode([]byte(`{"integration_type":"channel","configuration":{"topic":"o","colour":"red"}}`))
	assert.ErrorContains(t, err, "configuration.colour: unknown field")

	_, err = tb.Integrations().Create(ctx, bus.Integration{Sink: pubsub.Config[channelSettings]{}})
	assert.ErrorIs(t, err, bus.ErrInvalid, "a Config made without its type")
}

// scripted is a publisher failing with the errors given, then publishing.
type scripted struct {
	mu       sync.Mutex
	failures []error
	block    chan struct{} // when set, the next Publish waits for it, ignoring its context
	attempts int
	got      []string
	closed   int
}

func (s *scripted) Publish(_ string, msgs ...*message.Message) error {
	s.mu.Lock()
	s.attempts++
	block := s.block
	s.block = nil
	var err error
	if len(s.failures) > 0 {
		err, s.failures = s.failures[0], s.failures[1:]
	}
	s.mu.Unlock()
	if block != nil {
		<-block
	}
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range msgs {
		s.got = append(s.got, m.UUID)
	}
	return nil
}

func (s *scripted) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed++
	return nil
}

func (s *scripted) state() (attempts int, got []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts, append([]string(nil), s.got...)
}

var errTooLarge = errors.New("message too large")

func scriptedType(s *scripted, classify func(error) error) *pubsub.Type[struct{}] {
	return &pubsub.Type[struct{}]{
		Name:     "scripted",
		New:      func(struct{}, sinks.Env) (message.Publisher, error) { return s, nil },
		Classify: classify,
	}
}

// A failure is retryable by default: the event is retried after its
// backoff and delivered; the log says why it was retried.
func TestType_failures_are_retryable_by_default(t *testing.T) {
	s := &scripted{failures: []error{errors.New("connection reset")}}
	typ := scriptedType(s, nil)
	tb := busWith(t, typ.SinkType())
	tb.Create(bus.Integration{ID: "erp", Sink: typ.Config(struct{}{})})
	tb.MustPublish(bus.Event{ID: "e1", Name: "order.created"})
	require.NoError(t, tb.Clock.BlockUntil(waitCtx(t), 1))
	tb.Clock.Advance(time.Hour)
	require.Eventually(t, func() bool { _, got := s.state(); return len(got) == 1 }, 10*time.Second, time.Millisecond)

	retries := logged(t, tb, middleware.ActionRetryTriggered)
	require.Len(t, retries, 1)
	assert.Contains(t, retries[0], "scripted publisher: connection reset")
}

// logged returns the reasons of the integration log entries of action.
func logged(t *testing.T, tb *bustest.Bus, action string) []string {
	t.Helper()
	entries, err := tb.Integrations().Log(ctx, "erp")
	require.NoError(t, err)
	var out []string
	for _, e := range entries {
		if e.Action == action {
			out = append(out, e.Reason)
		}
	}
	return out
}

// A Classify hook makes what it knows permanent: the event is rejected at
// its first attempt, with the publisher's reason, and the next one goes on.
func TestType_Classify_hook_rejects_what_it_knows_is_permanent(t *testing.T) {
	s := &scripted{failures: []error{errTooLarge}}
	typ := scriptedType(s, func(err error) error {
		if errors.Is(err, errTooLarge) {
			return sinks.Permanent(err)
		}
		return err
	})
	tb := busWith(t, typ.SinkType())
	tb.Create(bus.Integration{ID: "erp", Sink: typ.Config(struct{}{}), Concurrency: 1})
	tb.MustPublish(bus.Event{ID: "big", Name: "order.created"}, bus.Event{ID: "ok", Name: "order.created"})
	require.Eventually(t, func() bool { _, got := s.state(); return len(got) == 1 }, 10*time.Second, time.Millisecond)

	rejected, err := tb.Integrations().Rejected(ctx, "erp")
	require.NoError(t, err)
	require.Len(t, rejected, 1)
	assert.Equal(t, "big", rejected[0].EventID)
	assert.Equal(t, 1, rejected[0].Attempts)
	assert.Contains(t, rejected[0].Reason, "message too large")
	attempts, got := s.state()
	assert.Equal(t, 2, attempts)
	assert.Equal(t, []string{"ok"}, got)
}

// An attempt ends at its timeout even when the publisher ignores its
// context; the circuit opens after failures in a row and a probe closes
// it.
func TestType_timeout_and_breaker_hold_for_a_publisher_that_hangs(t *testing.T) {
	release := make(chan struct{})
	s := &scripted{block: release, failures: []error{nil, errors.New("down")}}
	typ := scriptedType(s, nil)
	tb := busWith(t, typ.SinkType())
	tb.Create(bus.Integration{ID: "erp", Sink: typ.Config(struct{}{}), Delivery: middleware.Settings{
		Timeout: 20 * time.Millisecond,
		Breaker: middleware.BreakerPolicy{WarnAfter: 2, OpenAfter: 2},
	}})
	tb.MustPublish(bus.Event{ID: "e1", Name: "order.created"})
	require.NoError(t, tb.Clock.BlockUntil(waitCtx(t), 1), "the hung attempt timed out; the retry waits")
	close(release)
	d, _ := tb.Clock.NextDue()
	tb.Clock.Advance(d)
	require.Eventually(t, func() bool {
		st, err := tb.Integrations().Circuit(ctx, "erp")
		return err == nil && st.State == middleware.StateOpen
	}, 10*time.Second, time.Millisecond, "two failures in a row open the circuit")

	retries := logged(t, tb, middleware.ActionRetryTriggered)
	require.NotEmpty(t, retries)
	assert.Contains(t, retries[len(retries)-1], "scripted publisher: no answer within the attempt: context deadline exceeded")

	require.NoError(t, tb.Clock.BlockUntil(waitCtx(t), 1))
	tb.Clock.Advance(middleware.DefaultCoolDown)
	require.Eventually(t, func() bool {
		st, err := tb.Integrations().Circuit(ctx, "erp")
		return err == nil && st.State == middleware.StateClosed
	}, 10*time.Second, time.Millisecond, "the probe delivers and closes the circuit")
	attempts, got := s.state()
	assert.Equal(t, 3, attempts)
	assert.Equal(t, []string{"e1", "e1"}, got, "the hung call landed late: at-least-once")
}

// The sink refuses events once closed and closes the wrapped publisher
// once.
func TestPublisher_Close_is_idempotent_and_refuses_events(t *testing.T) {
	s := &scripted{}
	p, err := scriptedType(s, nil).Config(struct{}{}).NewPublisher(sinks.Env{})
	require.NoError(t, err)
	require.NoError(t, p.Close())
	require.NoError(t, p.Close())
	assert.ErrorIs(t, p.Publish("t", message.NewMessage("e1", nil)), sinks.ErrClosed)
	assert.Equal(t, 1, s.closed)
}

// When the bus traces, the message carries the attempt's trace context,
// not Publish's.
func TestType_message_carries_the_attempts_trace_context(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	c := newChannel(t)
	tb := busWith(t, c.typ.SinkType(), func(cfg *bus.Config) { cfg.TracerProvider = tp })
	msgs, err := c.pubsub.Subscribe(ctx, "orders")
	require.NoError(t, err)
	tb.Create(bus.Integration{ID: "erp", Sink: c.typ.Config(channelSettings{Topic: "orders"})})
	tb.MustPublish(bus.Event{ID: "o-1", Name: "order.fulfilled"})

	m := receive(t, msgs)
	require.Eventually(t, func() bool { return len(exp.GetSpans()) == 2 }, 10*time.Second, time.Millisecond)
	var attempt tracetest.SpanStub
	for _, s := range exp.GetSpans() {
		if s.Name == "send erp" {
			attempt = s
		}
	}
	assert.Contains(t, m.Metadata.Get("traceparent"), attempt.SpanContext.SpanID().String())
	assert.Empty(t, m.Metadata.Get(sinks.MetaTraceParent))
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

func waitCtx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(ctx, 10*time.Second)
	t.Cleanup(cancel)
	return c
}
