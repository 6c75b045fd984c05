package bus

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sinkbus/sinkbus/field"
	"github.com/sinkbus/sinkbus/sinks"
)

// HandlerFunc handles events inside the application: the Adobe starter
// kit's consumer → handler routing, with the same delivery chain as a sink.
// Its error decides what happens next, exactly as a sink's does: nil is
// delivered, sinks.Permanent(err) rejects the event at once, anything else
// is retried (sinks.RetryAfter(err, d) to wait at least d). A replay or a
// retried rejected event arrives again with the same ID and e.Replayed set.
//
// A HandlerFunc is also the Sink of an in-process integration; it is not
// saved in DataDir, so the application registers it again at every start,
// and it resumes from its cursor.
type HandlerFunc func(ctx context.Context, e Event) error

// HandlerType is the integration type of in-process handlers.
const HandlerType = "handler"

// Type implements sinks.Config.
func (HandlerFunc) Type() string { return HandlerType }

// Validate implements sinks.Config.
func (h HandlerFunc) Validate() error {
	if h == nil {
		return field.New("", "handler function is nil")
	}
	return nil
}

// Masked implements sinks.Config.
func (h HandlerFunc) Masked() sinks.Config { return h }

// MarshalJSON shows an in-process handler as an empty configuration.
func (HandlerFunc) MarshalJSON() ([]byte, error) { return []byte("{}"), nil }

// NewPublisher implements sinks.Config.
func (h HandlerFunc) NewPublisher(sinks.Env) (message.Publisher, error) {
	return &handlerPublisher{fn: h}, nil
}

type handlerPublisher struct {
	fn     HandlerFunc
	closed atomic.Bool
}

func (p *handlerPublisher) Publish(_ string, msgs ...*message.Message) error {
	if p.closed.Load() {
		return sinks.ErrClosed
	}
	for _, m := range msgs {
		if err := p.fn(m.Context(), EventFromMessage(m)); err != nil {
			return err
		}
	}
	return nil
}

// PublishMessage implements sinks.MessagePublisher.
func (p *handlerPublisher) PublishMessage(_ string, m *message.Message) error {
	if p.closed.Load() {
		return sinks.ErrClosed
	}
	return p.fn(m.Context(), EventFromMessage(m))
}

func (p *handlerPublisher) Close() error {
	p.closed.Store(true)
	return nil
}

// handlerType is in every bus's registry: a HandlerFunc is created in Go,
// never from JSON.
var handlerType = sinks.Type{
	Name: HandlerType,
	Decode: func(json.RawMessage) (sinks.Config, error) {
		return nil, errors.New("handler integrations are created in Go with Bus.Handle")
	},
}

// Handle routes the events matching observes to fn, through the delivery
// chain, as the in-process integration id. Calling it again with the same
// id after a restart resumes from where that handler left off. Options
// (filter, delivery settings, concurrency, order key) come from opts.
func (b *Bus) Handle(id string, observes []string, fn HandlerFunc, opts ...func(*Integration)) error {
	in := Integration{ID: id, Name: id, Observes: observes, Sink: fn}
	for _, o := range opts {
		o(&in)
	}
	in.Sink = fn
	_, err := b.Integrations().Create(context.Background(), in)
	return err
}

// handlerTimeout is the default per-attempt timeout of in-process handlers.
const handlerTimeout = 30 * time.Second

// AttemptTimeout implements sinks.AttemptTimeouter.
func (HandlerFunc) AttemptTimeout() time.Duration { return handlerTimeout }
