// Package pubsub turns any Watermill Pub/Sub's publisher (AMQP, Kafka,
// NATS, Google Cloud Pub/Sub, Redis Streams, SQL, ...) into a sinkbus
// integration type, with the whole delivery chain: filter, rate limit,
// retry, circuit breaker, timeout, rejection, log and traces.
//
// A Type names the integration type, the settings an integration of it
// holds (C, a struct decoded strictly from the integration's
// "configuration" JSON) and how to build the publisher from them:
//
//	var AMQP = &pubsub.Type[AMQPSettings]{
//		Name: "amqp",
//		New: func(s AMQPSettings, env sinks.Env) (message.Publisher, error) {
//			return amqp.NewPublisher(amqp.NewDurablePubSubConfig(s.URL, nil), env.Logger)
//		},
//	}
//
//	func init() { AMQP.Register() }
//
//	b.Integrations().Create(ctx, bus.Integration{Sink: AMQP.Config(AMQPSettings{URL: url})})
//
// Each event is published as a message whose UUID is the event id, whose
// payload is the sinkbus envelope every sink sends (sinks.AppendEnvelope)
// and whose metadata is the event's (the application's keys and the bus's
// sinkbus_name, sinkbus_tenant, sinkbus_published_at, sinkbus_replayed),
// plus the attempt's traceparent and tracestate when the bus traces. A
// Watermill subscriber on the other side reads the event from the payload
// (sinks.Envelope) and dedupes on the message UUID.
//
// The publisher is the application's: it connects as its own client does,
// not through sinkbus's network guard (netguard). A Type whose settings come
// from JSON that others may write (the management API) should refuse the
// addresses it must not reach in its settings' Validate, or dial through
// netguard.Guard.
//
// Publishers classify no failure the way sinkbus does, so a failure is
// retryable unless the Type's Classify says otherwise (DefaultClassify): an
// event is never lost to a failure nobody understood, and the circuit
// breaker pauses the integration while the destination keeps failing.
package pubsub

import (
	"encoding/json"
	"fmt"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sinkbus/sinkbus/field"
	"github.com/sinkbus/sinkbus/sinks"
)

// Type is an integration type whose sink is a Watermill publisher built
// from settings C. C is decoded strictly from the integration's
// "configuration" JSON (unknown fields refused) and encoded back with
// encoding/json, so it keeps what it is given. When C has a
// Validate() error method, the bus reports its problems (field names
// relative to the configuration, as *field.Error values do); when it has a
// Masked() C method, reads show that instead (secrets hidden with
// sinks.Mask).
type Type[C any] struct {
	// Name is the integration_type: ^[a-z][a-z0-9_]{0,49}$. Required.
	Name string
	// New builds the publisher when the integration starts; the bus closes
	// it when the integration stops or changes. Log through env.Logger.
	// Required.
	New func(settings C, env sinks.Env) (message.Publisher, error)
	// Topic names the topic each event is published to. Nil means the
	// event name ("order.fulfilled").
	Topic func(settings C, msg *message.Message) string
	// Classify decides what a failed Publish means: it returns err wrapped
	// with sinks.Permanent (the event goes to the rejected store at once)
	// or sinks.RetryAfter, or as it is (retryable). Nil means
	// DefaultClassify.
	Classify func(err error) error
}

// DefaultClassify is the classification of a Type without Classify: what
// the publisher classified itself (sinks.Permanent, sinks.RetryAfter, a
// *sinks.StatusError) keeps its class, anything else is retryable, as
// sinks.Classify has it.
func DefaultClassify(err error) error { return err }

// Register adds t to the default registry (sinks.Register), so that the
// bus builds integrations of type t.Name from JSON. Call it once, from an
// init function. It panics when t is invalid or its name is taken, as that
// is a programming mistake.
func (t *Type[C]) Register() { sinks.Register(t.SinkType()) }

// SinkType returns t for a registry of the application's own
// (sinks.Registry.Register). It panics when t has no New.
func (t *Type[C]) SinkType() sinks.Type {
	if t.New == nil {
		panic(fmt.Sprintf("sinkbus: pubsub type %q has no New", t.Name))
	}
	return sinks.Type{Name: t.Name, Decode: func(configuration json.RawMessage) (sinks.Config, error) {
		var s C
		if err := field.DecodeStrict(configuration, &s); err != nil {
			return nil, err
		}
		return t.Config(s), nil
	}}
}

// Config returns the configuration of an integration of type t: the
// bus.Integration's Sink.
func (t *Type[C]) Config(settings C) Config[C] { return Config[C]{Settings: settings, t: t} }

// Config is the configuration of an integration of a Type: its settings.
// Make it with Type.Config. It implements sinks.Config.
type Config[C any] struct {
	Settings C
	t        *Type[C]
}

var _ sinks.Config = Config[struct{}]{}

// Type implements sinks.Config.
func (c Config[C]) Type() string {
	if c.t == nil {
		return ""
	}
	return c.t.Name
}

// Validate implements sinks.Config with the settings' Validate method,
// when they have one.
func (c Config[C]) Validate() error {
	if c.t == nil {
		return field.New("", "made without its type: use Type.Config")
	}
	if v, ok := any(c.Settings).(interface{ Validate() error }); ok {
		return v.Validate()
	}
	return nil
}

// Masked implements sinks.Config with the settings' Masked method, when
// they have one.
func (c Config[C]) Masked() sinks.Config {
	if m, ok := any(c.Settings).(interface{ Masked() C }); ok {
		c.Settings = m.Masked()
	}
	return c
}

// MarshalJSON writes the settings.
func (c Config[C]) MarshalJSON() ([]byte, error) { return json.Marshal(c.Settings) }

// NewPublisher implements sinks.Config: the Type's publisher, behind the
// adapter that shapes and classifies each event's message.
func (c Config[C]) NewPublisher(env sinks.Env) (message.Publisher, error) {
	if c.t == nil {
		return nil, c.Validate()
	}
	env = env.Defaults()
	pub, err := c.t.New(c.Settings, env)
	if err != nil {
		return nil, err
	}
	if pub == nil {
		return nil, fmt.Errorf("sinkbus: pubsub type %q: New returned no publisher", c.t.Name)
	}
	p := &Publisher{name: c.t.Name, pub: pub, classify: c.t.Classify}
	if p.classify == nil {
		p.classify = DefaultClassify
	}
	if c.t.Topic != nil {
		s, topic := c.Settings, c.t.Topic
		p.topic = func(msg *message.Message) string { return topic(s, msg) }
	}
	return p, nil
}

// Publisher is the sink of a Type: a message.Publisher that publishes each
// event's message through the Type's publisher. Safe for concurrent use
// as far as the wrapped publisher is (Watermill's publishers are).
type Publisher struct {
	name     string
	pub      message.Publisher
	topic    func(*message.Message) string // nil: the topic given
	classify func(error) error

	mu     sync.RWMutex // held for reading by each Publish, so that Close waits for them
	closed bool
}

// Publish publishes each message's event, one after the other, and returns
// the first failure, classified. An attempt ends with its message's
// context even when the wrapped publisher ignores it (AMQP's publisher
// waits for the broker's confirmation without it): the call goes on in the
// background and the attempt is retryable, as at-least-once allows. After
// Close it returns sinks.ErrClosed.
func (p *Publisher) Publish(topic string, msgs ...*message.Message) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return sinks.ErrClosed
	}
	for _, msg := range msgs {
		if err := p.publish(topic, msg); err != nil {
			return err
		}
	}
	return nil
}

func (p *Publisher) publish(topic string, msg *message.Message) error {
	if p.topic != nil {
		topic = p.topic(msg)
	}
	if topic == "" {
		topic = msg.Metadata.Get(sinks.MetaName)
	}
	out := outgoing(msg)
	ctx := msg.Context()
	if err := ctx.Err(); err != nil {
		return err
	}
	if ctx.Done() == nil { // nothing to give up on: no goroutine
		return p.failed(p.pub.Publish(topic, out))
	}
	done := make(chan error, 1)
	go func() { done <- p.pub.Publish(topic, out) }()
	select {
	case err := <-done:
		return p.failed(err)
	case <-ctx.Done():
		return fmt.Errorf("%s publisher: no answer within the attempt: %w", p.name, ctx.Err())
	}
}

// failed classifies a failure of the wrapped publisher and names it.
func (p *Publisher) failed(err error) error {
	if err == nil {
		return nil
	}
	return p.classify(&Error{Type: p.name, Err: err})
}

// Close stops taking events, waits for the Publish calls under way and
// closes the wrapped publisher (which flushes what it holds). It is
// idempotent.
func (p *Publisher) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	return p.pub.Close()
}

// Error is a failure of a Type's publisher.
type Error struct {
	// Type is the integration type.
	Type string
	Err  error
}

func (e *Error) Error() string { return e.Type + " publisher: " + e.Err.Error() }

// Unwrap returns the publisher's error.
func (e *Error) Unwrap() error { return e.Err }

// outgoing is the message published for msg: a new one, since a publisher
// may keep what it is given while msg is retried.
func outgoing(msg *message.Message) *message.Message {
	out := message.NewMessage(msg.UUID, sinks.AppendEnvelope(nil, msg))
	for k, v := range msg.Metadata {
		switch k {
		case sinks.MetaAttempt, sinks.MetaTraceParent, sinks.MetaTraceState:
			continue // per attempt, or Publish's trace: the attempt's is set below
		}
		out.Metadata[k] = v
	}
	sinks.InjectTrace(msg.Context(), metadataCarrier(out.Metadata))
	out.SetContext(msg.Context())
	return out
}

// metadataCarrier sets the trace context's keys in a message's metadata.
type metadataCarrier message.Metadata

func (c metadataCarrier) Get(key string) string { return c[key] }
func (c metadataCarrier) Set(key, val string)   { c[key] = val }
func (metadataCarrier) Keys() []string          { return nil }
