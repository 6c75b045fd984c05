// Package stopping carries a "stop soon" signal in a message's context.
//
// When an integration stops, the journal's consumer raises the signal at
// once but keeps the message contexts alive for a grace period: an attempt
// under way may finish and be acknowledged (no duplicate for the receiver),
// while waits between attempts (backoff, a paused circuit) end at once.
package stopping

import (
	"context"
	"time"

	"github.com/sinkbus/sinkbus/internal/clock"
)

// ErrStopping ends a wait cut short by the signal. The event is not
// answered as delivered and stays in the journal.
//
// It matches context.Canceled (errors.Is): the stop cancels the attempt, as
// a cancelled context would. Watermill's router logs a handler's error at
// error level unless it is a cancellation, so this is what keeps every
// shutdown with attempts under way from logging one error per attempt.
var ErrStopping error = stoppingError{}

type stoppingError struct{}

func (stoppingError) Error() string { return "integration stopping: the event will be delivered again" }

func (stoppingError) Is(target error) bool { return target == context.Canceled }

type key struct{}

// With returns ctx carrying stop as its stop signal.
func With(ctx context.Context, stop <-chan struct{}) context.Context {
	return context.WithValue(ctx, key{}, stop)
}

// Signal returns ctx's stop signal; nil (never ready) when it has none.
func Signal(ctx context.Context) <-chan struct{} {
	c, _ := ctx.Value(key{}).(<-chan struct{})
	return c
}

// Raised reports whether ctx is done or its stop signal is raised.
func Raised(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	select {
	case <-Signal(ctx):
		return true
	default:
		return false
	}
}

// Sleep waits d on c, or until ctx is done (its error) or its stop signal is
// raised (ErrStopping).
func Sleep(ctx context.Context, c clock.Clock, d time.Duration) error {
	if Raised(ctx) {
		if err := ctx.Err(); err != nil {
			return err
		}
		return ErrStopping
	}
	if d <= 0 {
		return nil
	}
	t := c.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-Signal(ctx):
		return ErrStopping
	}
}
