package bus

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sinkbus/sinkbus/filter"
	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/replay"
	"github.com/sinkbus/sinkbus/sinks"
)

// runner is one integration inside the bus: its compiled filter and delivery
// chain for its whole life, and, while it runs, its sink and router handler.
// Its methods are called with b.mu held.
type runner struct {
	b      *Bus
	in     Integration
	filter *filter.Filter
	chain  *middleware.Chain

	gen     int
	live    *delivery // nil while stopped
	stopped chan struct{}
}

// delivery is what a running integration holds.
type delivery struct {
	sink     message.Publisher
	handle   message.HandlerFunc // filter ▸ chain ▸ sink
	consumer *replay.Consumer
	handler  *message.Handler
	replays  []*replay.Consumer // replays under way through this delivery
}

func (b *Bus) newRunner(in Integration, f *filter.Filter) (*runner, error) {
	var onAttempt func(middleware.Attempt)
	var onReject func(string, middleware.RejectedEvent)
	var onSkip func(string, *message.Message)
	if obs := b.cfg.Observer; obs != nil {
		typ := in.Type()
		onAttempt = func(a middleware.Attempt) { obs.Attempted(typ, a) }
		onReject = func(id string, e middleware.RejectedEvent) { obs.Rejected(id, typ, e) }
		onSkip = func(id string, msg *message.Message) { obs.SkippedWhileOpen(id, typ, msg) }
	}
	chain, err := middleware.New(middleware.Config{
		IntegrationID:  in.ID,
		Settings:       in.Delivery,
		DefaultTimeout: attemptTimeout(in.Sink),
		Log:            b.logs,
		Rejected:       b.rejected,
		Clock:          b.cfg.Clock,
		Logger:         b.cfg.Logger.With(watermill.LogFields{"integration": in.ID}),
		OnWarning:      b.cfg.OnCircuitWarning,
		OnAttempt:      onAttempt,
		OnReject:       onReject,
		OnSkip:         onSkip,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, sinks.Prefix("delivery", err))
	}
	return &runner{b: b, in: in, filter: f, chain: chain}, nil
}

func attemptTimeout(c sinks.Config) time.Duration {
	if t, ok := c.(sinks.AttemptTimeouter); ok {
		return t.AttemptTimeout()
	}
	return 0
}

func (r *runner) concurrency() int {
	if r.in.Concurrency > 0 {
		return r.in.Concurrency
	}
	return r.b.cfg.Concurrency
}

// open builds the sink and the handler chain.
func (r *runner) open() (*delivery, error) {
	id := r.in.ID
	env := sinks.Env{
		IntegrationID: r.in.ID,
		Logger:        r.b.cfg.Logger.With(watermill.LogFields{"integration": r.in.ID}),
		Clock:         r.b.cfg.Clock,
		Concurrency:   r.concurrency(),
		Log:           func(action, reason string) { r.b.log(id, action, reason) },
	}
	if r.b.cfg.DataDir != "" {
		env.DataDir = r.b.cfg.DataDir
	}
	if !r.b.cfg.AllowPrivateNetworks && usesPrivateNetworks(r.in.Sink) {
		// Saved while the application allowed it; it no longer does.
		return nil, fmt.Errorf("%w: configuration.allow_private_networks: not allowed by this application", ErrInvalid)
	}
	sink, err := r.in.Sink.NewPublisher(env.Defaults())
	if err != nil {
		return nil, err
	}
	deliver := func(msg *message.Message) ([]*message.Message, error) {
		return nil, sink.Publish(msg.Metadata.Get(sinks.MetaName), msg)
	}
	var onSkip func(*message.Message)
	if obs := r.b.cfg.Observer; obs != nil {
		id, typ := r.in.ID, r.in.Type()
		onSkip = func(msg *message.Message) { obs.Skipped(id, typ, msg) }
	}
	handle := filter.Middleware(r.filter, onSkip)(r.chain.Middleware(deliver))
	return &delivery{sink: sink, handle: handle}, nil
}

// routerHandler is the delivery as the router runs it, once per message in
// a goroutine of its own.
func (d *delivery) routerHandler() message.NoPublishHandlerFunc {
	handle := d.handle
	return func(msg *message.Message) error {
		growStack()
		_, err := handle(msg)
		return err
	}
}

// start begins delivering from the integration's cursor. Before the router
// runs it does nothing: Run starts every running integration then.
func (r *runner) start() error {
	if r.live != nil || !r.b.routing {
		return nil
	}
	d, err := r.open()
	if err != nil {
		return err
	}
	cc := replay.ConsumerConfig{
		Group:       r.in.ID,
		MaxInFlight: r.concurrency(),
		OrderKey:    orderKeyFunc(r.orderKey()),
		StopGrace:   r.b.cfg.StopGrace,
		OnRetentionLoss: func(lost uint64) {
			r.b.log(r.in.ID, middleware.ActionRetentionLoss,
				fmt.Sprintf("%d events were removed by retention before the integration caught up.", lost))
		},
	}
	if r.in.Kind == Temporary {
		cc.Until = r.in.EndsAt
		id := r.in.ID
		cc.OnEnd = func() { go r.b.completed(id) }
	}
	d.consumer = r.b.journal.Consumer(cc)
	r.gen++
	name := fmt.Sprintf("%s#%d", r.in.ID, r.gen)
	d.handler = r.b.router.AddConsumerHandler(name, Topic, d.consumer, d.routerHandler())
	if err := r.b.router.RunHandlers(r.b.runCtx); err != nil {
		_ = d.sink.Close()
		return err
	}
	r.live = d
	return nil
}

// stop ends delivery; the cursor stays where acknowledgements left it.
func (r *runner) stop() error {
	d := r.live
	if d == nil {
		return nil
	}
	r.live = nil
	d.handler.Stop()
	<-d.handler.Stopped()
	errs := []error{d.consumer.Close()}
	for _, c := range d.replays {
		errs = append(errs, c.Close())
	}
	return errors.Join(append(errs, d.sink.Close())...)
}

// orderKey is the integration's order key, or the one its sink's
// destination keeps order by (an SQS FIFO queue's group).
func (r *runner) orderKey() string {
	if r.in.OrderKey != "" {
		return r.in.OrderKey
	}
	if k, ok := r.in.Sink.(sinks.OrderKeyer); ok {
		return k.DefaultOrderKey()
	}
	return ""
}

// orderKeyFunc returns the key function for an Integration.OrderKey.
func orderKeyFunc(key string) func(*message.Message) string {
	switch {
	case key == "":
		return nil
	case key == "tenant":
		return func(m *message.Message) string { return m.Metadata.Get(sinks.MetaTenant) }
	case key == "name":
		return func(m *message.Message) string { return m.Metadata.Get(sinks.MetaName) }
	case key == "id":
		return func(m *message.Message) string { return m.UUID }
	}
	path, err := filter.NewPath(strings.TrimPrefix(key, "payload."))
	if err != nil {
		return nil // refused at validation
	}
	return func(m *message.Message) string { return path.String(m.Payload) }
}
