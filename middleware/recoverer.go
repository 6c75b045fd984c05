package middleware

import (
	"fmt"
	"runtime/debug"

	"github.com/ThreeDotsLabs/watermill/message"
)

// PanicError is a panic in a sink or handler, recovered by Recoverer. It is a
// retryable failure: the event is retried, and a sink that always panics
// trips the circuit breaker instead of losing events.
type PanicError struct {
	// Value is what the code panicked with.
	Value any
	// Stack is the goroutine's stack at the panic.
	Stack []byte
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("sinkbus: sink panicked: %v", e.Value)
}

// Recoverer turns a panic in h into a *PanicError.
func Recoverer(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) (out []*message.Message, err error) {
		panicked := true
		defer func() {
			if panicked {
				// recover is nil for runtime.Goexit, which still unwinds.
				out, err = nil, &PanicError{Value: recover(), Stack: debug.Stack()}
			}
		}()
		out, err = h(msg)
		panicked = false
		return out, err
	}
}
