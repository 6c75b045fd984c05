package middleware

import (
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sinkbus/sinkbus/field"
	"github.com/sinkbus/sinkbus/internal/clock"
	"github.com/sinkbus/sinkbus/sinks"
)

// Config configures the delivery chain of one integration.
type Config struct {
	// IntegrationID names the integration in the stores and hooks. Required.
	IntegrationID string
	// Settings zero fields take their defaults (Settings.SetDefaults).
	Settings Settings
	// DefaultTimeout is the sink's own per-attempt timeout, used when
	// Settings.Timeout is zero. Zero means DefaultTimeout (30s).
	DefaultTimeout time.Duration
	// Log is the integration log. Required.
	Log LogStore
	// Rejected is the rejected store. Required.
	Rejected RejectedStore
	// Clock times backoffs and cool-downs. Nil means clock.Real.
	Clock clock.Clock
	// Logger nil means watermill.NopLogger.
	Logger watermill.LoggerAdapter
	// OnWarning is called once per failure streak when it reaches
	// Settings.Breaker.WarnAfter (Commerce Layer's early warning). Nil means
	// no call. It runs on the goroutine of the delivery that failed, before
	// that delivery goes on: keep it quick (hand an e-mail or a page to
	// another goroutine).
	OnWarning func(integrationID string, consecutiveFailures int)
	// OnStateChange is called after each change of the breaker's state
	// (a notification when it opens, a gauge), in the order of the changes.
	// Nil means no call. Like OnWarning, it runs on a delivery goroutine (or
	// Reset's caller): keep it quick.
	OnStateChange func(integrationID string, s BreakerState)
	// OnAttempt is called after each attempt, for metrics, on the delivery
	// goroutine. Nil means no call, and no cost.
	OnAttempt func(Attempt)
	// OnReject is called after an event was stored as rejected, for
	// metrics. Nil means no call.
	OnReject func(integrationID string, e RejectedEvent)
	// OnSkip is called for each event the breaker skipped while open
	// (SkipWhileOpen), for metrics. Nil means no call.
	OnSkip func(integrationID string, msg *message.Message)
}

// Attempt describes one attempt to deliver an event, for OnAttempt.
type Attempt struct {
	IntegrationID string
	EventID       string
	// Number is 1 for the first attempt of a delivery.
	Number int
	Class  sinks.Class
	// Err is the attempt's failure; nil when delivered.
	Err      error
	Duration time.Duration
}

// Chain is the delivery chain of one integration: every sink and in-process
// handler is called through it. Its middlewares run in the fixed order the
// package documentation gives, with the reasons for it.
type Chain struct {
	id        string
	settings  Settings
	clock     clock.Clock
	onAttempt func(Attempt)
	reject    Reject
	retry     Retry
	breaker   *Breaker
}

// New returns the chain of one integration, or every configuration problem
// at once (*field.Error values; settings fields named as in their JSON
// form, "retry.max_attempts").
func New(cfg Config) (*Chain, error) {
	var p field.Problems
	if cfg.IntegrationID == "" {
		p.Add("integration_id", "required")
	}
	if cfg.Log == nil {
		p.Add("log", "required")
	}
	if cfg.Rejected == nil {
		p.Add("rejected", "required")
	}
	if cfg.DefaultTimeout < 0 || cfg.DefaultTimeout > 0 && cfg.DefaultTimeout < MinTimeout {
		p.Add("default_timeout", "must be zero or at least %s", MinTimeout)
	}
	s := cfg.Settings
	s.SetDefaults()
	if err := s.Validate(); err != nil {
		p = append(p, field.Errors(err)...)
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	if s.Timeout == 0 {
		s.Timeout = cfg.DefaultTimeout
	}
	if s.Timeout == 0 {
		s.Timeout = DefaultTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = watermill.NopLogger{}
	}
	clk := clock.OrReal(cfg.Clock)
	breaker, err := NewBreaker(BreakerConfig{
		IntegrationID: cfg.IntegrationID,
		Policy:        s.Breaker,
		Log:           cfg.Log,
		Clock:         clk,
		Logger:        cfg.Logger,
		OnWarning:     cfg.OnWarning,
		OnStateChange: cfg.OnStateChange,
		OnSkip:        cfg.OnSkip,
	})
	if err != nil {
		return nil, err
	}
	return &Chain{
		id:        cfg.IntegrationID,
		settings:  s,
		clock:     clk,
		onAttempt: cfg.OnAttempt,
		reject: Reject{
			IntegrationID: cfg.IntegrationID,
			Store:         cfg.Rejected,
			Log:           cfg.Log,
			Clock:         clk,
			Logger:        cfg.Logger,
			OnReject:      cfg.OnReject,
		},
		retry: Retry{
			IntegrationID: cfg.IntegrationID,
			Policy:        s.Retry,
			Log:           cfg.Log,
			Clock:         clk,
			Logger:        cfg.Logger,
			Breaker:       breaker,
		},
		breaker: breaker,
	}, nil
}

// Middleware wraps h, the handler that delivers one event (typically calling
// a sink's Publish), in the whole chain. Its result is what the router
// should do: nil (acknowledge) when the event was delivered, skipped or
// stored as rejected; an error (nack) only when the message's context was
// done or the rejected store failed.
func (c *Chain) Middleware(h message.HandlerFunc) message.HandlerFunc {
	h = c.attempt(h)
	h = c.breaker.Middleware(h)
	h = c.retry.Middleware(h)
	return c.reject.Middleware(h)
}

// Deliver makes one attempt to deliver msg through h (the manual retry of a
// rejected event): breaker, timeout and recoverer apply, retry and reject do
// not. It returns the attempt's failure, which sinks.Classify understands,
// or ErrCircuitOpen when the circuit is open and not due for a probe. A
// success closes an open circuit. Storing or deleting the rejected event is
// the caller's business.
func (c *Chain) Deliver(msg *message.Message, h message.HandlerFunc) error {
	if msg.Metadata == nil {
		msg.Metadata = make(message.Metadata)
	}
	if msg.Metadata.Get(sinks.MetaAttempt) == "" {
		msg.Metadata.Set(sinks.MetaAttempt, "1")
	}
	return c.breaker.once(msg, c.attempt(h))
}

// Breaker returns the integration's circuit breaker (closed forever when the
// settings disable it).
func (c *Chain) Breaker() *Breaker { return c.breaker }

// Settings returns the settings in force: defaults applied, timeout resolved.
func (c *Chain) Settings() Settings { return c.settings }

// attempt wraps h in the per-attempt layers: Timeout ▸ Recoverer ▸ h, and
// the OnAttempt hook around them.
func (c *Chain) attempt(h message.HandlerFunc) message.HandlerFunc {
	h = Timeout(c.settings.Timeout)(Recoverer(h))
	if c.onAttempt == nil {
		return h
	}
	return func(msg *message.Message) ([]*message.Message, error) {
		start := c.clock.Now()
		out, err := h(msg)
		class, _ := sinks.Classify(err)
		n, _ := strconv.Atoi(msg.Metadata.Get(sinks.MetaAttempt))
		c.onAttempt(Attempt{
			IntegrationID: c.id,
			EventID:       msg.UUID,
			Number:        n,
			Class:         class,
			Err:           err,
			Duration:      c.clock.Now().Sub(start),
		})
		return out, err
	}
}
