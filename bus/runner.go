package bus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sinkbus/sinkbus/field"
	"github.com/sinkbus/sinkbus/filter"
	"github.com/sinkbus/sinkbus/internal/logging"
	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/replay"
	"github.com/sinkbus/sinkbus/sinks"
)

// runner is one integration inside the bus: its record, compiled filter and
// delivery chain, and, while it runs, its sink and router handler.
//
// Locking: op serialises the changes of one integration (create, start,
// stop, update, delete, replay, completion) and is held across their slow
// parts: building a sink, draining the router handler, closing the sink. So
// a sink that is slow to close holds up only its own integration. b.mu
// guards the fields below and is held briefly, never across those parts.
// Take op before b.mu, never the other way round. The fields are written
// with both held, so either is enough to read them.
type runner struct {
	b  *Bus
	op opLock

	in     Integration
	filter *filter.Filter
	chain  *middleware.Chain
	live   *delivery // nil while stopped
	ready  bool      // created: lookups find it
	gone   bool      // deleted, or its creation rolled back
}

// opLock is a mutex whose waiters can give up when their context ends
// (sync.Mutex waits without one). Its zero value is unlocked.
type opLock struct {
	once sync.Once
	sem  chan struct{} // holds a token while locked
}

func (l *opLock) ch() chan struct{} {
	l.once.Do(func() { l.sem = make(chan struct{}, 1) })
	return l.sem
}

// Lock waits for the lock.
func (l *opLock) Lock() { l.ch() <- struct{}{} }

// lockContext waits for the lock until ctx ends.
func (l *opLock) lockContext(ctx context.Context) error {
	select {
	case l.ch() <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Unlock releases the lock, which any goroutine may do.
func (l *opLock) Unlock() { <-l.ch() }

// delivery is what a running integration holds.
type delivery struct {
	sink     message.Publisher
	publish  message.HandlerFunc // the sink's Publish of one message
	gate     *gate
	handle   message.HandlerFunc // filter ▸ gate ▸ chain ▸ sink
	consumer *replay.Consumer
	handler  *message.Handler

	mu      sync.Mutex
	closed  bool
	replays map[*replay.Consumer]int64 // replays under way through this delivery, with their rows (0: none)
	// handover: the delivery stops because another replica is to deliver
	// the integration; its replays go on there.
	handover atomic.Bool
}

// newChain builds the delivery chain of in: retries, breaker, rejection.
func (b *Bus) newChain(in Integration) (*middleware.Chain, error) {
	var onAttempt func(middleware.Attempt)
	var onReject func(string, middleware.RejectedEvent)
	var onSkip func(string, *message.Message)
	key := in.Ref()
	if obs := b.cfg.Observer; obs != nil {
		typ := in.Type()
		onAttempt = func(a middleware.Attempt) { obs.Attempted(typ, a) }
		onReject = func(id string, e middleware.RejectedEvent) { obs.Rejected(id, typ, e) }
		onSkip = func(id string, msg *message.Message) { obs.SkippedWhileOpen(id, typ, msg) }
	}
	chain, err := middleware.New(middleware.Config{
		IntegrationID:  key,
		Settings:       in.Delivery,
		DefaultTimeout: attemptTimeout(in.Sink),
		Log:            b.deliveryLogs,
		Rejected:       b.deliveryRejected,
		Clock:          b.cfg.Clock,
		Logger:         b.wlog, // the chain names the integration in its lines
		OnWarning:      b.cfg.OnCircuitWarning,
		OnAttempt:      onAttempt,
		OnReject:       onReject,
		OnSkip:         onSkip,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, field.Prefix("delivery", err))
	}
	return chain, nil
}

func attemptTimeout(c sinks.Config) time.Duration {
	if t, ok := c.(sinks.AttemptTimeouter); ok {
		return t.AttemptTimeout()
	}
	return 0
}

// concurrency is how many deliveries of in run at once.
func (b *Bus) concurrency(in Integration) int {
	if in.Concurrency > 0 {
		return in.Concurrency
	}
	return b.cfg.Concurrency
}

// sinkEnv is the Env the sink of in is built with, and purged with when
// the integration is deleted. What the sink logs, and writes into the
// integration log, goes through red.
func (b *Bus) sinkEnv(in Integration, red *sinks.Redactor) sinks.Env {
	id := in.Ref()
	return sinks.Env{
		IntegrationID: id,
		Logger:        red.Logger(b.wlog.With(watermill.LogFields{logging.IntegrationID: id})),
		Clock:         b.cfg.Clock,
		Concurrency:   b.concurrency(in),
		DataDir:       b.cfg.DataDir,
		PathRoot:      b.cfg.PathRoot,
		Log:           func(action, reason string) { b.log(id, action, red.String(reason)) },
	}.Defaults()
}

// redactor removes in's secrets, and whatever looks like a credential,
// from what its sink reports: the errors the delivery chain keeps in the
// log and the rejected store, logs, returns from a manual retry. A
// destination that echoes the request (its Authorization header, a
// signature) in an error body would otherwise have them all keep it.
func redactor(in Integration) *sinks.Redactor {
	return sinks.NewRedactor(sinks.SecretsOf(in.Sink)...)
}

// openDelivery builds the sink and the handler chain.
func (b *Bus) openDelivery(in Integration, chain *middleware.Chain) (*delivery, error) {
	// Saved under other bus settings (AllowPrivateNetworks, DataDir), it
	// may no longer be allowed here.
	var p field.Problems
	b.updateRules(in.Sink).check(&p, &in) // its paths were checked when it was set
	if err := p.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	red := redactor(in)
	sink, err := in.Sink.NewPublisher(b.sinkEnv(in, red))
	if err != nil {
		return nil, sinkError(err, red)
	}
	one, _ := sink.(sinks.MessagePublisher)
	publish := b.guardSink(in, func(msg *message.Message) ([]*message.Message, error) {
		topic := msg.Metadata.Get(sinks.MetaName)
		if one != nil {
			return nil, red.Error(one.PublishMessage(topic, msg))
		}
		return nil, red.Error(sink.Publish(topic, msg))
	})
	if b.pg != nil {
		publish = b.pg.fenceAttempts(in.Ref(), publish)
	}
	if b.tracer != nil {
		publish = b.traceAttempts(in, publish)
	}
	gate := newGate(gateConfig{
		concurrency: b.concurrency(in),
		key:         orderKey(in),
		limit:       in.RateLimit.limiter(),
		clock:       b.cfg.Clock,
		throttle:    b.throttleReporter(in),
	})
	// The filter is the consumers' (selection): the events it does not
	// pass never become messages.
	handle := tenantOnly(in.Tenant, gate.Middleware(chain.Middleware(publish)))
	return &delivery{sink: sink, publish: publish, gate: gate, handle: handle, replays: make(map[*replay.Consumer]int64)}, nil
}

// sinkError classifies an error of building a sink: one that names a field
// of the configuration (a file sink without a directory on a bus without
// one) is the integration's mistake, ErrInvalid; others (a broker that
// cannot be reached) are returned redacted. Field errors quote no value.
func sinkError(err error, red *sinks.Redactor) error {
	var fe *field.Error
	if !errors.Is(err, ErrInvalid) && !errors.As(err, &fe) {
		return red.Error(err)
	}
	if errors.Is(err, ErrInvalid) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrInvalid, field.Prefix("configuration", err))
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

// start begins delivering from the integration's cursor; op must be held.
// Before the router runs it does nothing: Run starts every running
// integration then. A failure leaves the integration stopped.
func (r *runner) start() error {
	b := r.b
	b.mu.Lock()
	if r.live != nil || r.gone || !b.routing || b.closed {
		b.mu.Unlock()
		return nil
	}
	in, f, chain := r.in, r.filter, r.chain
	b.mu.Unlock()
	if b.pg != nil && !b.pg.holds(in.Ref()) {
		return b.pg.checkSink(in, chain)
	}

	d, err := b.openDelivery(in, chain)
	if err != nil {
		return err
	}
	cc := replay.ConsumerConfig{
		Select:          selection(in.Tenant, f),
		SharedContext:   true, // the chain keeps nothing running past an answer
		Group:           in.Ref(),
		MaxInFlight:     b.concurrency(in),
		OrderKey:        orderKey(in),
		StopGrace:       b.cfg.StopGrace,
		OnRetentionLoss: func(lost uint64) { b.lostEvents(in, lost) },
		MaxWaitingBytes: b.cfg.MaxWaitingBytes,
		OnPause:         func(paused bool, waiting int64) { b.logPause(in.ID, paused, waiting) },
	}
	if in.Kind == Temporary {
		cc.Until = in.EndsAt
		cc.OnEnd = func() { b.background(func() { b.completed(r, d) }) }
	}
	cc.OnSkip, cc.CountSkipped = b.onSkip(in, nil)
	d.consumer = b.journal.Consumer(cc)
	// Unique names: Watermill panics on a name it still has.
	name := fmt.Sprintf("%s#%d", in.Ref(), b.handlers.Add(1))
	h, routing, err := b.addHandler(name, d.consumer, d.routerHandler())
	if !routing || err != nil { // stopping: as before the router ran
		return errors.Join(err, d.consumer.Close(), d.sink.Close())
	}
	d.handler = h
	b.mu.Lock()
	r.live = d
	b.mu.Unlock()
	return nil
}

// selection is the Select of an integration's consumers: another tenant's
// events pass unseen, before the filter (they are no business of its
// filter, its log or the Observer); those its filter does not match are
// skipped. Both are acknowledged without becoming messages.
func selection(tenant string, f *filter.Filter) func(replay.RecordView) replay.Verdict {
	return func(v replay.RecordView) replay.Verdict {
		if tenant != "" && !admits(tenant, v.Meta(sinks.MetaTenant)) {
			return replay.Pass
		}
		name := v.Meta(sinks.MetaName)
		if !f.MatchName(name) || f.NeedsPayload() && !f.Match(name, v.Data()) {
			return replay.Skip
		}
		return replay.Deliver
	}
}

// onSkip returns the OnSkip or the CountSkipped of in's consumers: they
// tell the Observer, in bulk when it is a SkipCounter, else each event as
// a message (decorated as the consumer decorates the ones it sends).
// Without an Observer both are nil; only OnSkip copies skipped events.
func (b *Bus) onSkip(in Integration, decorate func(*message.Message)) (func(*replay.Record), func(int)) {
	obs := b.cfg.Observer
	if obs == nil {
		return nil, nil
	}
	id, typ := in.Ref(), in.Type()
	if c, ok := obs.(SkipCounter); ok {
		return nil, func(n int) { c.SkippedEvents(id, typ, n) }
	}
	return func(rec *replay.Record) {
		msg := message.NewMessage(rec.UUID, rec.Payload)
		msg.Metadata = rec.Metadata
		if msg.Metadata == nil {
			msg.Metadata = message.Metadata{}
		}
		if decorate != nil {
			decorate(msg)
		}
		obs.Skipped(id, typ, msg)
	}, nil
}

// logPause tells the integration log that reading from the journal paused
// because the events waiting hold MaxWaitingBytes, or that it goes on.
func (b *Bus) logPause(id string, paused bool, waiting int64) {
	if !paused {
		b.log(id, middleware.ActionReadingResumed, fmt.Sprintf(
			"Events waiting hold %d KiB; reading from the journal goes on.", waiting>>10))
		return
	}
	b.log(id, middleware.ActionReadingPaused, fmt.Sprintf(
		"Events waiting for their turn (behind an order key whose delivery keeps failing, most likely) hold %d KiB, "+
			"the integration's bound (MaxWaitingBytes); reading from the journal paused until they move.", waiting>>10))
}

// stop ends delivery; op must be held. The cursor stays where
// acknowledgements left it.
func (r *runner) stop() error {
	b := r.b
	b.mu.Lock()
	d := r.live
	r.live = nil
	b.mu.Unlock()
	if d == nil {
		return nil
	}
	return d.close()
}

// close stops the handler (attempts under way get the stop grace), the
// replays through it, then the sink.
func (d *delivery) close() error {
	d.handler.Stop()
	<-d.handler.Stopped()
	errs := []error{d.consumer.Close()}
	d.mu.Lock()
	d.closed = true
	replays := d.replays
	d.replays = nil
	d.mu.Unlock()
	for c := range replays {
		errs = append(errs, c.Close())
	}
	return errors.Join(append(errs, d.sink.Close())...)
}

// lostEvents tells that the journal removed lost events before in read
// them: in its log, the bus's log and the Observer.
func (b *Bus) lostEvents(in Integration, lost uint64) {
	events := fmt.Sprintf("%d events were", lost)
	switch {
	case in.Tenant != "":
		// Whose they were went with them: a count would tell the tenant of
		// other tenants' events. The Observer, the application's, counts.
		events = "Events of the journal were"
	case lost == 1:
		events = "1 event was"
	}
	reason := events + " removed by retention before the integration caught up."
	if b.memory != nil {
		bound := "no bound"
		if n := b.memory.MaxBytes(); n >= 0 {
			bound = formatBytes(n)
		}
		reason = fmt.Sprintf("%s removed from the in-memory journal before the integration caught up "+
			"(MemoryBytes %s, Retention %s); a DataDir keeps them on disk.",
			events, bound, retentionText(b.cfg.Retention))
	}
	b.log(in.Ref(), middleware.ActionRetentionLoss, reason)
	b.cfg.Logger.Error("Events removed from the journal before delivery", logging.IntegrationID, in.Ref(), "lost", lost)
	if obs := b.cfg.Observer; obs != nil {
		obs.LostToRetention(in.Ref(), in.Type(), lost)
	}
}

func formatBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

func retentionText(d time.Duration) string {
	switch {
	case d < 0:
		return "forever"
	case d == 0:
		d = replay.DefaultRetention
	}
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	}
	return d.String()
}

// orderKey returns the key function of the integration's order key, or of
// the key its sink's destination keeps order by (an SQS FIFO queue's group).
func orderKey(in Integration) func(*message.Message) string {
	if in.OrderKey != "" {
		return orderKeyFunc(in.OrderKey)
	}
	k, ok := in.Sink.(sinks.OrderKeyer)
	if !ok {
		return nil
	}
	key := orderKeyFunc(k.DefaultOrderKey())
	if key == nil {
		return nil
	}
	// The destination puts events without a value for the key into one
	// group of their own (a FIFO queue's default group): they are ordered
	// too, not left unordered as an empty key would be.
	return func(m *message.Message) string {
		if v := key(m); v != "" {
			return "=" + v
		}
		return "none"
	}
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
