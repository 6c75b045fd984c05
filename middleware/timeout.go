package middleware

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Timeout gives each call of the handler (each attempt) a fresh context
// derived from the message's context with a deadline d from now, and puts the
// message's context back afterwards, so the next attempt starts clean. An
// attempt that fails past its deadline gets an error saying so; it stays
// retryable, as the sink classified it.
//
// The deadline is wall-clock time, since network calls read it from the
// context. The sink must honour msg.Context(): Timeout cancels, it does not
// abandon a call.
func Timeout(d time.Duration) func(message.HandlerFunc) message.HandlerFunc {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			parent := msg.Context()
			ctx, cancel := context.WithTimeout(parent, d)
			defer func() {
				cancel()
				msg.SetContext(parent)
			}()
			msg.SetContext(ctx)
			out, err := h(msg)
			if err != nil && parent.Err() == nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
				err = fmt.Errorf("attempt timed out after %s: %w", d, err)
			}
			return out, err
		}
	}
}
