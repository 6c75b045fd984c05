package middleware

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sinkbus/sinkbus/internal/clock"
	"github.com/sinkbus/sinkbus/internal/stopping"
	"github.com/sinkbus/sinkbus/sinks"
)

// Circuit states, as BreakerState.State names them.
const (
	StateClosed   = "closed"
	StateOpen     = "open"
	StateHalfOpen = "half-open"
)

// ErrCircuitOpen is returned by Chain.Deliver when the circuit is open and
// its cool-down has not expired: the attempt was not made.
var ErrCircuitOpen = errors.New("sinkbus: circuit open")

// BreakerState is a snapshot of a circuit breaker.
type BreakerState struct {
	// State is StateClosed, StateOpen or StateHalfOpen.
	State string `json:"state"`
	// ConsecutiveFailures counts the retryable failures since the last
	// success or reset.
	ConsecutiveFailures int `json:"consecutive_failures"`
	// OpenedAt is when the circuit opened; zero while closed.
	OpenedAt time.Time `json:"opened_at,omitzero"`
	// NextProbeAt is when the cool-down ends and one attempt probes the
	// destination; zero while closed.
	NextProbeAt time.Time `json:"next_probe_at,omitzero"`
}

// BreakerConfig configures a Breaker.
type BreakerConfig struct {
	// IntegrationID names the integration in log entries and hooks.
	IntegrationID string
	// Policy is the breaker policy; zero fields take their defaults.
	Policy BreakerPolicy
	// Log receives the circuit_* and event_skipped entries. Required.
	Log LogStore
	// Clock times the cool-downs. Nil means clock.Real.
	Clock clock.Clock
	// Logger nil means watermill.NopLogger.
	Logger watermill.LoggerAdapter
	// OnWarning is called once per failure streak, when it reaches
	// Policy.WarnAfter. Nil means no call.
	OnWarning func(integrationID string, consecutiveFailures int)
	// OnStateChange is called after each change of state. Nil means no call.
	OnStateChange func(integrationID string, s BreakerState)
	// OnSkip is called for each event skipped while open (SkipWhileOpen),
	// for metrics. Nil means no call.
	OnSkip func(integrationID string, msg *message.Message)
}

// Breaker is the circuit breaker of one integration, a middleware that sees
// every attempt (it sits inside Retry). It counts consecutive retryable
// failures; permanent failures neither count nor reset the count.
//
//   - closed: attempts go through. At WarnAfter failures it warns (once per
//     streak); at OpenAfter it opens.
//   - open: attempts wait (the integration pauses) until the cool-down ends
//     or their context is done. With SkipWhileOpen they are skipped instead:
//     acknowledged without delivery and logged as event_skipped.
//   - half-open: the cool-down has ended and exactly one waiting attempt
//     probes the destination while the others keep waiting. Success closes
//     the circuit and wakes every waiter; failure opens it again for twice
//     the cool-down, up to MaxCoolDown. A probe that proves nothing (a
//     permanent failure, a cancelled context) hands the probe to the next
//     waiter.
//
// Any success closes the circuit; Reset closes it at once. Safe for
// concurrent use.
type Breaker struct {
	id        string
	policy    BreakerPolicy
	clock     clock.Clock
	log       LogStore
	logger    watermill.LoggerAdapter
	onWarning func(string, int)
	onState   func(string, BreakerState)
	onSkip    func(string, *message.Message)

	// clean is true while the circuit is closed with no failure counted, so
	// that a successful attempt takes no lock.
	clean atomic.Bool

	mu          sync.Mutex
	state       string
	failures    int
	warned      bool
	coolDown    time.Duration // the current one, doubled by each failed probe
	openedAt    time.Time
	nextProbeAt time.Time
	probe       uint64        // ticket of the probe in flight while half-open
	tickets     uint64        // last ticket handed out
	wake        chan struct{} // closed and replaced when waiters must look again
	paused      time.Duration // time spent not closed, up to pausedSince
	pausedSince time.Time
}

// NewBreaker returns a closed breaker.
func NewBreaker(cfg BreakerConfig) (*Breaker, error) {
	var p sinks.Problems
	if cfg.Log == nil {
		p.Add("log", "required")
	}
	cfg.Policy.setDefaults()
	cfg.Policy.validate(&p, "")
	if err := p.Err(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = watermill.NopLogger{}
	}
	b := &Breaker{
		id:        cfg.IntegrationID,
		policy:    cfg.Policy,
		clock:     clock.OrReal(cfg.Clock),
		log:       cfg.Log,
		logger:    cfg.Logger,
		onWarning: cfg.OnWarning,
		onState:   cfg.OnStateChange,
		onSkip:    cfg.OnSkip,
		state:     StateClosed,
		coolDown:  cfg.Policy.CoolDown,
		wake:      make(chan struct{}),
	}
	b.clean.Store(true)
	return b, nil
}

// Middleware returns h guarded by the breaker; h itself when the policy
// disables the breaker.
func (b *Breaker) Middleware(h message.HandlerFunc) message.HandlerFunc {
	if b.policy.Disabled {
		return h
	}
	return func(msg *message.Message) ([]*message.Message, error) {
		if b.clean.Load() {
			ctx := msg.Context()
			out, err := h(msg)
			if err != nil {
				b.record(ctx, err, 0)
			}
			return out, err
		}
		return b.attempt(msg, h, true)
	}
}

// once makes one attempt without waiting: ErrCircuitOpen when the circuit
// is open and not due for a probe.
func (b *Breaker) once(msg *message.Message, h message.HandlerFunc) error {
	if b.policy.Disabled {
		_, err := h(msg)
		return err
	}
	_, err := b.attempt(msg, h, false)
	return err
}

func (b *Breaker) attempt(msg *message.Message, h message.HandlerFunc, wait bool) (out []*message.Message, err error) {
	ctx := msg.Context()
	ticket, skip, err := b.admit(ctx, wait)
	if err != nil {
		return nil, err
	}
	if skip {
		b.skipped(msg)
		return nil, nil
	}
	if ticket != 0 {
		// The probe must end, even if h panics, or the circuit would
		// stay half-open with every waiter waiting for it.
		done := false
		defer func() {
			if !done {
				b.inconclusive(ticket)
			}
		}()
		out, err = h(msg)
		done = true
		b.record(ctx, err, ticket)
		return out, err
	}
	out, err = h(msg)
	b.record(ctx, err, 0)
	return out, err
}

// admit returns when an attempt may be made: ticket is non-zero when the
// attempt is the probe. Without wait, an open circuit returns
// ErrCircuitOpen; else with SkipWhileOpen it returns skip.
func (b *Breaker) admit(ctx context.Context, wait bool) (ticket uint64, skip bool, err error) {
	for {
		b.mu.Lock()
		var timeout time.Duration // zero: wait for a change only
		switch b.state {
		case StateClosed:
			b.mu.Unlock()
			return 0, false, nil
		case StateOpen:
			now := b.clock.Now()
			if !now.Before(b.nextProbeAt) {
				b.tickets++
				b.probe = b.tickets
				b.state = StateHalfOpen
				ticket, s := b.probe, b.snapshot()
				b.mu.Unlock()
				b.notify(notice{changed: true, state: s})
				return ticket, false, nil
			}
			timeout = b.nextProbeAt.Sub(now)
		}
		wake := b.wake
		b.mu.Unlock()
		switch {
		case !wait:
			return 0, false, ErrCircuitOpen
		case b.policy.SkipWhileOpen:
			return 0, true, nil
		}
		if err := b.sleep(ctx, timeout, wake); err != nil {
			return 0, false, err
		}
	}
}

func (b *Breaker) sleep(ctx context.Context, d time.Duration, wake <-chan struct{}) error {
	var fire <-chan time.Time
	if d > 0 {
		t := b.clock.NewTimer(d)
		defer t.Stop()
		fire = t.C()
	}
	select {
	case <-fire:
	case <-wake:
	case <-ctx.Done():
		return ctx.Err()
	case <-stopping.Signal(ctx):
		return stopping.ErrStopping
	}
	return nil
}

// record counts the outcome of an attempt; ticket is non-zero for a probe.
func (b *Breaker) record(ctx context.Context, err error, ticket uint64) {
	class, _ := sinks.Classify(err)
	switch {
	case class == sinks.ClassDelivered:
		if ticket == 0 && b.clean.Load() {
			return
		}
		b.success()
	case class == sinks.ClassPermanent, ctx.Err() != nil:
		// Says nothing about the destination's health.
		if ticket != 0 {
			b.inconclusive(ticket)
		}
	default:
		b.failure(err, ticket)
	}
}

func (b *Breaker) success() {
	b.mu.Lock()
	var n notice
	if b.state != StateClosed {
		n = b.closeLocked(ActionCircuitClosed, fmt.Sprintf(
			"Delivery succeeded after %d consecutive failed attempts; deliveries resumed.", b.failures))
	}
	b.failures, b.warned = 0, false
	b.clean.Store(true)
	b.mu.Unlock()
	b.notify(n)
}

func (b *Breaker) failure(err error, ticket uint64) {
	now := b.clock.Now()
	b.mu.Lock()
	b.failures++
	b.clean.Store(false)
	var n notice
	switch {
	case b.state == StateClosed:
		if !b.warned && b.failures >= b.policy.WarnAfter {
			b.warned = true
			n.warn = b.failures
			n.add(ActionCircuitWarning, fmt.Sprintf(
				"%d consecutive failed attempts. Last failure: %s", b.failures, reasonOf(err)), now)
		}
		if b.failures >= b.policy.OpenAfter {
			b.openLocked(now, b.policy.CoolDown)
			n.add(ActionCircuitOpened, fmt.Sprintf(
				"Circuit opened after %d consecutive failed attempts; deliveries paused until %s. Last failure: %s",
				b.failures, b.nextProbeAt.UTC().Format(time.RFC3339), reasonOf(err)), now)
			n.changed, n.state = true, b.snapshot()
		}
	case b.state == StateHalfOpen && ticket == b.probe:
		b.openLocked(now, min(2*b.coolDown, b.policy.MaxCoolDown))
		n.add(ActionCircuitOpened, fmt.Sprintf(
			"Probe failed; deliveries paused until %s. Last failure: %s",
			b.nextProbeAt.UTC().Format(time.RFC3339), reasonOf(err)), now)
		n.changed, n.state = true, b.snapshot()
	}
	// Otherwise the attempt began before the circuit opened: it counts, but
	// changes nothing.
	b.mu.Unlock()
	b.notify(n)
}

// inconclusive ends a probe that proved nothing: the next waiter probes.
func (b *Breaker) inconclusive(ticket uint64) {
	b.mu.Lock()
	if b.state != StateHalfOpen || ticket != b.probe {
		b.mu.Unlock()
		return
	}
	b.state = StateOpen
	b.nextProbeAt = b.clock.Now()
	b.wakeLocked()
	s := b.snapshot()
	b.mu.Unlock()
	b.notify(notice{changed: true, state: s})
}

// Reset closes the circuit at once, clears the failure count and wakes every
// waiting attempt. It logs circuit_reset.
func (b *Breaker) Reset() {
	b.mu.Lock()
	n := b.closeLocked(ActionCircuitReset, "Circuit reset manually.")
	b.failures, b.warned = 0, false
	b.clean.Store(true)
	b.mu.Unlock()
	b.notify(n)
}

// State returns a snapshot of the breaker.
func (b *Breaker) State() BreakerState {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.snapshot()
}

// pausedTotal returns how long the circuit has been anything but closed,
// in total, up to now. Retry takes this time out of MaxElapsedTime.
func (b *Breaker) pausedTotal(now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	d := b.paused
	if b.state != StateClosed {
		d += now.Sub(b.pausedSince)
	}
	return d
}

func (b *Breaker) openLocked(now time.Time, coolDown time.Duration) {
	if b.state == StateClosed {
		b.openedAt, b.pausedSince = now, now
	}
	b.state = StateOpen
	b.coolDown = coolDown
	b.nextProbeAt = now.Add(coolDown)
	b.wakeLocked()
}

// closeLocked closes the circuit and returns the notice to send.
func (b *Breaker) closeLocked(action, reason string) notice {
	now := b.clock.Now()
	if b.state != StateClosed {
		b.paused += now.Sub(b.pausedSince)
	}
	b.state = StateClosed
	b.coolDown = b.policy.CoolDown
	b.openedAt, b.nextProbeAt = time.Time{}, time.Time{}
	b.wakeLocked()
	n := notice{changed: true}
	n.state = BreakerState{State: StateClosed}
	n.add(action, reason, now)
	return n
}

func (b *Breaker) wakeLocked() {
	close(b.wake)
	b.wake = make(chan struct{})
}

func (b *Breaker) snapshot() BreakerState {
	return BreakerState{
		State:               b.state,
		ConsecutiveFailures: b.failures,
		OpenedAt:            b.openedAt,
		NextProbeAt:         b.nextProbeAt,
	}
}

func (b *Breaker) skipped(msg *message.Message) {
	b.mu.Lock()
	since := b.openedAt
	b.mu.Unlock()
	var n notice
	n.add(ActionEventSkipped, fmt.Sprintf("Circuit open since %s; event skipped.",
		since.UTC().Format(time.RFC3339)), b.clock.Now())
	n.entries[0].EventID = msg.UUID
	b.notify(n)
	if b.onSkip != nil {
		b.onSkip(b.id, msg)
	}
}

// notice is what a change of the breaker tells the world, gathered under
// the lock and sent after it is released.
type notice struct {
	entries []LogEntry
	warn    int // OnWarning's count, zero for no call
	changed bool
	state   BreakerState
}

func (n *notice) add(action, reason string, now time.Time) {
	n.entries = append(n.entries, LogEntry{Action: action, Reason: reason, CreatedAt: now})
}

func (b *Breaker) notify(n notice) {
	for _, e := range n.entries {
		if err := b.log.Append(b.id, e); err != nil {
			b.logger.Error("Cannot write the integration log", err, watermill.LogFields{
				"integration_id": b.id, "action": e.Action})
		}
		b.logger.Info("Circuit breaker: "+e.Action, watermill.LogFields{
			"integration_id": b.id, "reason": e.Reason})
	}
	if n.warn > 0 && b.onWarning != nil {
		b.onWarning(b.id, n.warn)
	}
	if n.changed && b.onState != nil {
		b.onState(b.id, n.state)
	}
}
