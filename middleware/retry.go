package middleware

import (
	"fmt"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/cenkalti/backoff/v4"

	"github.com/sinkbus/sinkbus/internal/clock"
	"github.com/sinkbus/sinkbus/internal/stopping"
	"github.com/sinkbus/sinkbus/sinks"
)

// Retry calls the handler again after a retryable failure, waiting an
// exponential backoff with jitter (cenkalti/backoff/v4) or the wait the
// destination asked for (Retry-After), whichever is longer. Each retry
// writes a retry_triggered entry whose reason is the failure's text. It sets
// sinks.MetaAttempt on the message before each attempt (1 for the first).
//
// It returns at once on success, on a permanent failure, and when the
// message's context is done or its integration is stopping (the router nacks
// and the event stays in the journal). After Policy.MaxAttempts attempts, or
// once the next wait would pass Policy.MaxElapsedTime, it returns the last
// failure; when the wait that would pass it is the destination's
// Retry-After, the failure says so. Nothing is allocated unless an attempt
// fails.
//
// With a Breaker inside, a failure the breaker puts down to an outage (it
// opened the circuit, or found it open) is not the event's: it does not
// count toward MaxAttempts, no backoff follows and no retry_triggered entry
// is written; the event goes straight back to wait in the breaker, whose
// probes alone reach the destination. Time paused does not count toward
// MaxElapsedTime either. So an outage of any length rejects nothing.
type Retry struct {
	// IntegrationID names the integration in log entries.
	IntegrationID string
	// Policy zero fields take their defaults.
	Policy RetryPolicy
	// Log receives the retry_triggered entries. Nil means none are written.
	Log LogStore
	// Clock times the waits. Nil means clock.Real.
	Clock clock.Clock
	// Logger nil means watermill.NopLogger.
	Logger watermill.LoggerAdapter
	// Breaker is the circuit breaker inside this retry, if any: time it keeps
	// the integration paused does not count toward MaxElapsedTime.
	Breaker *Breaker
}

// Middleware returns h with retries.
func (r Retry) Middleware(h message.HandlerFunc) message.HandlerFunc {
	r.Policy.setDefaults()
	r.Clock = clock.OrReal(r.Clock)
	if r.Logger == nil {
		r.Logger = watermill.NopLogger{}
	}
	work := &workClock{clock: r.Clock, breaker: r.Breaker}
	return func(msg *message.Message) ([]*message.Message, error) {
		ctx := msg.Context()
		if msg.Metadata == nil {
			msg.Metadata = make(message.Metadata)
		}
		var b *backoff.ExponentialBackOff
		counted := 0 // attempts charged to the event
		for attempt := 1; ; attempt++ {
			msg.Metadata[sinks.MetaAttempt] = strconv.Itoa(attempt)
			out, err := h(msg)
			msg.SetContext(ctx)
			if err == nil {
				return out, nil
			}
			err, outage := unwrapOutage(err)
			if cerr := ctx.Err(); cerr != nil {
				return nil, cerr
			}
			class, after := sinks.Classify(err)
			switch {
			case class == sinks.ClassDelivered:
				return out, nil
			case class == sinks.ClassPermanent:
				return out, err
			case outage:
				// The breaker makes it wait for the next probe.
				if stopping.Raised(ctx) {
					return nil, stopping.ErrStopping
				}
				continue
			}
			if counted++; counted >= r.Policy.MaxAttempts {
				return out, err
			}
			if b == nil {
				b = r.backOff(work)
			}
			backOff := b.NextBackOff()
			wait := max(backOff, after)
			if elapsed := b.GetElapsedTime(); elapsed+wait > r.Policy.MaxElapsedTime {
				if after > backOff {
					err = r.retryAfterTooLong(err, after, elapsed)
				}
				return out, err
			}
			if stopping.Raised(ctx) {
				return nil, stopping.ErrStopping
			}
			r.logRetry(msg, err, attempt, wait)
			if err := stopping.Sleep(ctx, r.Clock, wait); err != nil {
				return nil, err
			}
		}
	}
}

// retryAfterTooLong explains a rejection whose cause is the destination's
// Retry-After rather than its failure alone.
func (r Retry) retryAfterTooLong(err error, after, elapsed time.Duration) error {
	limit := r.Policy.MaxElapsedTime
	left := (limit - elapsed).Round(time.Second)
	switch {
	case elapsed < time.Second:
		return fmt.Errorf("%w; Retry-After %s exceeds max_elapsed_time %s", err, after, limit)
	case left <= 0:
		return fmt.Errorf("%w; max_elapsed_time %s reached", err, limit)
	}
	return fmt.Errorf("%w; Retry-After %s exceeds the %s left of max_elapsed_time %s", err, after, left, limit)
}

// backOff returns the backoff of one event, started now.
func (r Retry) backOff(work *workClock) *backoff.ExponentialBackOff {
	b := &backoff.ExponentialBackOff{
		InitialInterval:     r.Policy.InitialInterval,
		RandomizationFactor: max(r.Policy.RandomizationFactor, 0),
		Multiplier:          r.Policy.Multiplier,
		MaxInterval:         r.Policy.MaxInterval,
		Stop:                backoff.Stop,
		Clock:               work, // MaxElapsedTime is checked by Middleware
	}
	b.Reset()
	return b
}

func (r Retry) logRetry(msg *message.Message, err error, attempt int, wait time.Duration) {
	reason := reasonOf(err)
	r.Logger.Info("Delivery failed, retrying", watermill.LogFields{
		"integration_id": r.IntegrationID, "event_id": msg.UUID,
		"attempt": attempt, "wait": wait, "reason": reason,
	})
	if r.Log == nil {
		return
	}
	e := LogEntry{Action: ActionRetryTriggered, Reason: reason, EventID: msg.UUID, CreatedAt: r.Clock.Now()}
	if err := r.Log.Append(r.IntegrationID, e); err != nil {
		r.Logger.Error("Cannot write the integration log", err, watermill.LogFields{
			"integration_id": r.IntegrationID, "action": e.Action})
	}
}

// workClock is the clock the backoff measures elapsed time with: it stands
// still while the breaker keeps the integration paused.
type workClock struct {
	clock   clock.Clock
	breaker *Breaker
}

func (w *workClock) Now() time.Time {
	now := w.clock.Now()
	if w.breaker == nil {
		return now
	}
	return now.Add(-w.breaker.pausedTotal(now))
}
