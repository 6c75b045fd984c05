package bus

import (
	"context"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"golang.org/x/time/rate"

	"github.com/sinkbus/sinkbus/internal/clock"
	"github.com/sinkbus/sinkbus/internal/stopping"
)

// gate holds an integration's concurrency, its order key and its rate
// limit across every consumer that delivers through it: the live one, the
// replays beside it and manual retries of rejected events. Each consumer
// bounds only its own messages; without the gate a replay would double the
// deliveries in flight and the rate, and a replayed event could be sent
// while a live one of the same key is.
type gate struct {
	slots chan struct{}
	key   func(*message.Message) string // nil: no order key

	limit    *rate.Limiter // nil: no rate limit
	clock    clock.Clock
	throttle func(*message.Message, time.Duration) // told of each wait for limit

	mu   sync.Mutex
	busy map[string]chan struct{} // closed when the key's delivery ends
}

// gateConfig is what a gate holds to.
type gateConfig struct {
	concurrency int
	key         func(*message.Message) string
	limit       *rate.Limiter
	clock       clock.Clock
	throttle    func(*message.Message, time.Duration)
}

func newGate(c gateConfig) *gate {
	return &gate{
		slots: make(chan struct{}, max(c.concurrency, 1)), key: c.key,
		limit: c.limit, clock: clock.OrReal(c.clock), throttle: c.throttle,
		busy: make(map[string]chan struct{}),
	}
}

// Middleware runs h once the message may be delivered: no other delivery
// of its key is under way, a slot is free, and the rate limit lets it go.
// A stop while it waits nacks the message (stopping.ErrStopping); it is
// delivered again later.
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

// enter waits for msg's key, then for a slot, then for the rate limit; it
// returns the key it holds ("" for none). The limit comes last: an event
// that took its turn and then waited for its key would bunch up with the
// events behind it, and the destination would see a burst over the limit.
func (g *gate) enter(msg *message.Message) (key string, err error) {
	ctx := msg.Context()
	key = g.keyOf(msg)
	for {
		busy := g.takeKey(key)
		if busy == nil {
			break
		}
		if err := wait(ctx, busy, nil, nil); err != nil {
			return "", err
		}
	}
	select {
	case g.slots <- struct{}{}:
	default:
		if err := wait(ctx, nil, g.slots, nil); err != nil {
			g.release(key)
			return "", err
		}
	}
	if g.limit != nil {
		if err := g.pace(ctx, msg); err != nil {
			g.leave(key)
			return "", err
		}
	}
	return key, nil
}

// pace waits for msg's turn under the rate limit, on the bus clock: the
// limiter only does the arithmetic, so that tests move time. A wait cut
// short gives the turn back.
func (g *gate) pace(ctx context.Context, msg *message.Message) error {
	now := g.clock.Now()
	r := g.limit.ReserveN(now, 1) // always OK: the burst is at least 1
	d := r.DelayFrom(now)
	if d <= 0 {
		return nil
	}
	if g.throttle != nil {
		g.throttle(msg, d)
	}
	t := g.clock.NewTimer(d)
	defer t.Stop()
	if err := wait(ctx, nil, nil, t.C()); err != nil {
		r.CancelAt(g.clock.Now())
		return err
	}
	return nil
}

// tryEnter takes msg's key and a slot if both are free now, without
// waiting for them; ok reports whether it did. It then waits for the rate
// limit, as enter does; err is what ended that wait.
func (g *gate) tryEnter(msg *message.Message) (key string, ok bool, err error) {
	key = g.keyOf(msg)
	if g.takeKey(key) != nil {
		return "", false, nil
	}
	select {
	case g.slots <- struct{}{}:
	default:
		g.release(key)
		return "", false, nil
	}
	if g.limit != nil {
		if err := g.pace(msg.Context(), msg); err != nil {
			g.leave(key)
			return "", false, err
		}
	}
	return key, true, nil
}

func (g *gate) keyOf(msg *message.Message) string {
	if g.key == nil {
		return ""
	}
	return g.key(msg)
}

// takeKey takes key when it is free (always, for ""), and returns nil;
// else the channel closed when its holder lets it go.
func (g *gate) takeKey(key string) <-chan struct{} {
	if key == "" {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if busy, taken := g.busy[key]; taken {
		return busy
	}
	g.busy[key] = make(chan struct{})
	return nil
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

// wait blocks until done is closed, a token goes into slots or timer fires
// (a nil channel is never ready), or until ctx ends or its stop signal is
// raised.
func wait(ctx context.Context, done <-chan struct{}, slots chan<- struct{}, timer <-chan time.Time) error {
	select {
	case <-done:
		return nil
	case slots <- struct{}{}:
		return nil
	case <-timer:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-stopping.Signal(ctx):
		return stopping.ErrStopping
	}
}
