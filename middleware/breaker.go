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

	"github.com/sinkbus/sinkbus/field"
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
	// FailedProbes counts the probes that failed since the circuit opened;
	// zero while closed.
	FailedProbes int `json:"failed_probes,omitempty"`
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
	// Policy.WarnAfter. Nil means no call. It runs on a delivery goroutine,
	// which waits for it: keep it quick. See Breaker for the order of hooks.
	OnWarning func(integrationID string, consecutiveFailures int)
	// OnStateChange is called after each change of state, in the order of
	// the changes. Nil means no call. Keep it quick too.
	OnStateChange func(integrationID string, s BreakerState)
	// OnSkip is called for each event skipped while open (SkipWhileOpen),
	// for metrics. Nil means no call.
	OnSkip func(integrationID string, msg *message.Message)
}

// Breaker is the circuit breaker of one integration, a middleware that sees
// every attempt (it sits inside Retry; the package documentation says why).
// It counts consecutive retryable failures; permanent failures neither count
// nor reset the count.
//
//   - closed: attempts go through. At WarnAfter failures it warns (once per
//     streak); at OpenAfter it opens.
//   - open: attempts wait (the integration pauses) until the cool-down ends
//     or their context is done. With SkipWhileOpen they are skipped instead:
//     acknowledged without delivery and logged as event_skipped.
//   - half-open: the cool-down has ended and exactly one waiting attempt
//     probes the destination while the others keep waiting. Success closes
//     the circuit and wakes every waiter; failure opens it again for a
//     fifth of the time it has been open (at least CoolDown, at most
//     MaxCoolDown). A Retry-After longer than that is honoured, up to
//     MaxCoolDown. A probe that proves nothing
//     (a permanent failure, a cancelled context) hands the probe to the
//     next waiter.
//
// Any success closes the circuit; Reset closes it at once. Safe for
// concurrent use.
//
// A failure that opens the circuit, or finds it open or half-open (a probe,
// or an attempt that began before the circuit opened), is the outage's, not
// the event's: the Retry around the breaker does not count it toward
// MaxAttempts and sends the event straight back to wait here, so a long
// outage rejects nothing. With SkipWhileOpen nothing waits, and failures
// count as usual.
//
// The log stays readable through a long outage: one circuit_opened entry
// per outage, and failed probes logged as circuit_probe_failed at the 1st,
// 2nd, 4th, 8th … one (a week writes eleven), each with the count; State
// has the current one, and the circuit_closed entry the total.
//
// Log entries and hooks are sent in the order of the changes they report,
// after the breaker's lock is released, by whichever goroutine holds the
// turn: a delivery goroutine, or the caller of Reset. So a notice may be
// sent just after the call that caused it returns, by another goroutine. A
// hook that blocks holds back the notices behind it and its delivery, so
// keep hooks quick; they may call State and Reset.
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
	coolDown    time.Duration // the current wait between probes
	openedAt    time.Time
	nextProbeAt time.Time
	probe       uint64        // ticket of the probe in flight while half-open
	tickets     uint64        // last ticket handed out
	wake        chan struct{} // closed and replaced when waiters must look again
	paused      time.Duration // time spent not closed, up to pausedSince
	pausedSince time.Time
	probesFail  int // failed probes since the circuit opened

	pending []notice // to send, in the order of the changes
	sending bool     // a goroutine is sending pending
}

// NewBreaker returns a closed breaker.
func NewBreaker(cfg BreakerConfig) (*Breaker, error) {
	var p field.Problems
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
			// A success is recorded only if the circuit stopped being clean
			// during the attempt (other attempts failed, or opened it): any
			// success closes the circuit.
			if (err != nil || !b.clean.Load()) && b.record(ctx, err, 0) {
				err = &outageError{err}
			}
			return out, err
		}
		return b.attempt(msg, h, true)
	}
}

// outageError marks a failure as the outage's rather than the event's: the
// circuit was open or half-open when it was recorded, or it opened the
// circuit. Retry does not count it against the event. Its text and
// classification are those of the failure it wraps.
type outageError struct{ err error }

func (e *outageError) Error() string { return e.err.Error() }
func (e *outageError) Unwrap() error { return e.err }

// unwrapOutage returns the failure inside err, and whether it was the
// outage's.
func unwrapOutage(err error) (error, bool) {
	if o, ok := err.(*outageError); ok {
		return o.err, true
	}
	return err, false
}

// once makes one attempt without waiting: ErrCircuitOpen when the circuit
// is open and not due for a probe.
func (b *Breaker) once(msg *message.Message, h message.HandlerFunc) error {
	if b.policy.Disabled {
		_, err := h(msg)
		return err
	}
	_, err := b.attempt(msg, h, false)
	err, _ = unwrapOutage(err)
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
	} else {
		out, err = h(msg)
	}
	if b.record(ctx, err, ticket) {
		err = &outageError{err}
	}
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
				ticket, send := b.probe, b.queueLocked(notice{changed: true, state: b.snapshot()})
				b.mu.Unlock()
				b.flush(send)
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
// It reports whether a failure was the outage's (see outageError).
func (b *Breaker) record(ctx context.Context, err error, ticket uint64) (outage bool) {
	class, after := sinks.Classify(err)
	switch {
	case class == sinks.ClassDelivered:
		if ticket == 0 && b.clean.Load() {
			return false
		}
		b.success()
	case class == sinks.ClassPermanent, ctx.Err() != nil:
		// Says nothing about the destination's health.
		if ticket != 0 {
			b.inconclusive(ticket)
		}
	default:
		return b.failure(err, after, ticket)
	}
	return false
}

func (b *Breaker) success() {
	b.mu.Lock()
	var n notice
	if b.state != StateClosed {
		n = b.closeLocked(ActionCircuitClosed, fmt.Sprintf(
			"Delivery succeeded after %d consecutive failed attempts%s; deliveries resumed.",
			b.failures, b.outageLocked()))
	}
	b.failures, b.warned = 0, false
	b.clean.Store(true)
	send := b.queueLocked(n)
	b.mu.Unlock()
	b.flush(send)
}

// failure counts a retryable failure; after is the destination's
// Retry-After, if any. It reports whether the circuit is not closed
// afterwards: the failure opened it, or found it open.
func (b *Breaker) failure(err error, after time.Duration, ticket uint64) bool {
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
			b.openLocked(now, b.policy.CoolDown, after)
			n.add(ActionCircuitOpened, fmt.Sprintf(
				"Circuit opened after %d consecutive failed attempts; deliveries paused until %s. Last failure: %s",
				b.failures, b.nextProbeAt.UTC().Format(time.RFC3339), reasonOf(err)), now)
			n.changed, n.state = true, b.snapshot()
		}
	case b.state == StateHalfOpen && ticket == b.probe:
		b.probesFail++
		b.openLocked(now, b.nextCoolDownLocked(now), after)
		// The 1st, 2nd, 4th, 8th… failed probe is logged: a long outage
		// must not push the entries that matter out of the log.
		if b.probesFail&(b.probesFail-1) == 0 {
			n.add(ActionCircuitProbeFailed, fmt.Sprintf(
				"%d failed probes since the circuit opened at %s; deliveries paused until %s. Last failure: %s",
				b.probesFail, b.openedAt.UTC().Format(time.RFC3339), b.nextProbeAt.UTC().Format(time.RFC3339),
				reasonOf(err)), now)
		}
		n.changed, n.state = true, b.snapshot()
	}
	// Otherwise the attempt began before the circuit opened: it counts, but
	// changes nothing.
	// Skipping events do not wait for probes, so their failures stay theirs.
	outage := b.state != StateClosed && !b.policy.SkipWhileOpen
	send := b.queueLocked(n)
	b.mu.Unlock()
	b.flush(send)
	return outage
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
	send := b.queueLocked(notice{changed: true, state: b.snapshot()})
	b.mu.Unlock()
	b.flush(send)
}

// Reset closes the circuit at once, clears the failure count and wakes every
// waiting attempt. It logs circuit_reset.
func (b *Breaker) Reset() { b.ResetFor("manually") }

// ResetFor is Reset, saying how in the log entry ("by an update").
func (b *Breaker) ResetFor(how string) {
	b.mu.Lock()
	reason := "Circuit reset " + how + "."
	if b.state != StateClosed {
		reason = fmt.Sprintf("Circuit reset %s%s.", how, b.outageLocked())
	}
	n := b.closeLocked(ActionCircuitReset, reason)
	b.failures, b.warned = 0, false
	b.clean.Store(true)
	send := b.queueLocked(n)
	b.mu.Unlock()
	b.flush(send)
}

// Continue takes over from's count and circuit, so that a new chain for
// the same destination (an integration updated) goes on with the outage it
// was in rather than sending its waiting events at a destination known to
// be down. A probe from had in flight is its own: the next attempt here
// probes. Call it before b is used.
func (b *Breaker) Continue(from *Breaker) {
	from.mu.Lock()
	state, failures, warned := from.state, from.failures, from.warned
	coolDown, openedAt, nextProbeAt, probesFail := from.coolDown, from.openedAt, from.nextProbeAt, from.probesFail
	from.mu.Unlock()
	if state == StateHalfOpen {
		state = StateOpen
	}
	b.mu.Lock()
	b.state, b.failures, b.warned = state, failures, warned
	b.coolDown, b.openedAt, b.nextProbeAt, b.probesFail = coolDown, openedAt, nextProbeAt, probesFail
	if state != StateClosed {
		b.pausedSince = b.clock.Now()
	}
	b.clean.Store(state == StateClosed && failures == 0)
	b.mu.Unlock()
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

// nextCoolDownLocked is the wait after a failed probe at now.
func (b *Breaker) nextCoolDownLocked(now time.Time) time.Duration {
	return b.policy.CoolDownAfter(now.Sub(b.openedAt))
}

// openLocked opens the circuit for coolDown, or for the destination's
// Retry-After when longer, up to MaxCoolDown.
func (b *Breaker) openLocked(now time.Time, coolDown, retryAfter time.Duration) {
	if b.state == StateClosed {
		b.openedAt, b.pausedSince = now, now
		b.probesFail = 0
	}
	b.state = StateOpen
	b.coolDown = coolDown
	b.nextProbeAt = now.Add(max(coolDown, min(retryAfter, b.policy.MaxCoolDown)))
	b.wakeLocked()
}

// outageLocked describes the outage under way for the closing entry.
func (b *Breaker) outageLocked() string {
	return fmt.Sprintf(" (open for %s, %d failed probes)", b.clock.Now().Sub(b.openedAt).Round(time.Second), b.probesFail)
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
	b.probesFail = 0
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
		FailedProbes:        b.probesFail,
	}
}

func (b *Breaker) skipped(msg *message.Message) {
	now := b.clock.Now()
	b.mu.Lock()
	var n notice
	n.add(ActionEventSkipped, fmt.Sprintf("Circuit open since %s; event skipped.",
		b.openedAt.UTC().Format(time.RFC3339)), now)
	n.entries[0].EventID = msg.UUID
	send := b.queueLocked(n)
	b.mu.Unlock()
	b.flush(send)
	if b.onSkip != nil {
		b.onSkip(b.id, msg)
	}
}

// notice is what a change of the breaker tells the world: gathered and
// queued under the lock, so that the queue has the order of the changes, and
// sent after it is released, so that hooks may call State and Reset.
type notice struct {
	entries []LogEntry
	warn    int // OnWarning's count, zero for no call
	changed bool
	state   BreakerState
}

func (n *notice) add(action, reason string, now time.Time) {
	n.entries = append(n.entries, LogEntry{Action: action, Reason: reason, CreatedAt: now})
}

func (n notice) empty() bool { return len(n.entries) == 0 && n.warn == 0 && !n.changed }

// queueLocked queues n and reports whether the caller must flush: no other
// goroutine is sending the queue.
func (b *Breaker) queueLocked(n notice) bool {
	if n.empty() {
		return false
	}
	b.pending = append(b.pending, n)
	if b.sending {
		return false
	}
	b.sending = true
	return true
}

// flush sends the queued notices, in order, until the queue is empty; it
// does nothing unless send (queueLocked's answer).
func (b *Breaker) flush(send bool) {
	if !send {
		return
	}
	for {
		b.mu.Lock()
		batch := b.pending
		b.pending = nil
		if len(batch) == 0 {
			b.sending = false
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		b.sendAll(batch)
	}
}

func (b *Breaker) sendAll(batch []notice) {
	sent := false
	defer func() {
		if !sent {
			// A hook panicked: the next change sends what is left.
			b.mu.Lock()
			b.sending = false
			b.mu.Unlock()
		}
	}()
	for _, n := range batch {
		b.send(n)
	}
	sent = true
}

func (b *Breaker) send(n notice) {
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
