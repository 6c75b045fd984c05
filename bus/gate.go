package bus

import (
	"context"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sinkbus/sinkbus/internal/stopping"
)

// gate holds an integration's concurrency and its order key across every
// consumer that delivers through it: the live one and the replays beside
// it. Each consumer bounds only its own messages; without the gate a
// replay would double the deliveries in flight, and a replayed event could
// be sent while a live one of the same key is.
type gate struct {
	slots chan struct{}
	key   func(*message.Message) string // nil: no order key

	mu   sync.Mutex
	busy map[string]chan struct{} // closed when the key's delivery ends
}

func newGate(concurrency int, key func(*message.Message) string) *gate {
	return &gate{slots: make(chan struct{}, max(concurrency, 1)), key: key, busy: make(map[string]chan struct{})}
}

// Middleware runs h once the message may be delivered: a slot is free and
// no other delivery of its key is under way. A stop while it waits nacks
// the message (stopping.ErrStopping); it is delivered again later.
func (g *gate) Middleware(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		k, err := g.enter(msg)
		if err != nil {
			return nil, err
		}
		defer g.leave(k)
		return h(msg)
	}
}

// enter waits for msg's key, then for a slot; it returns the key it holds
// ("" for none).
func (g *gate) enter(msg *message.Message) (key string, err error) {
	ctx := msg.Context()
	if g.key != nil {
		key = g.key(msg)
	}
	for key != "" {
		g.mu.Lock()
		busy, taken := g.busy[key]
		if !taken {
			g.busy[key] = make(chan struct{})
		}
		g.mu.Unlock()
		if !taken {
			break
		}
		if err := wait(ctx, busy, nil); err != nil {
			return "", err
		}
	}
	select {
	case g.slots <- struct{}{}:
	default:
		if err := wait(ctx, nil, g.slots); err != nil {
			g.release(key)
			return "", err
		}
	}
	return key, nil
}

// leave gives back the slot and key enter took.
func (g *gate) leave(key string) {
	<-g.slots
	g.release(key)
}

// release lets the next delivery of key go.
func (g *gate) release(key string) {
	if key == "" {
		return
	}
	g.mu.Lock()
	done := g.busy[key]
	delete(g.busy, key)
	g.mu.Unlock()
	close(done)
}

// wait blocks until done is closed or a token goes into slots (a nil
// channel is never ready), or until ctx ends or its stop signal is raised.
func wait(ctx context.Context, done <-chan struct{}, slots chan<- struct{}) error {
	select {
	case <-done:
		return nil
	case slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-stopping.Signal(ctx):
		return stopping.ErrStopping
	}
}
