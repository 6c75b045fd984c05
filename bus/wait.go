package bus

import (
	"context"
	"fmt"
	"time"
)

// Publisher is what application code that publishes events needs of a bus:
// *Bus implements it, and so does bustest's test bus, so that code taking a
// Publisher runs against either.
type Publisher interface {
	Publish(ctx context.Context, events ...Event) error
}

var _ Publisher = (*Bus)(nil)

// WaitDelivered returns once integration id has settled every event
// published before the call: delivered, rejected (to its rejected store)
// or skipped (not observed, or skipped while its circuit was open); or
// when ctx ends, with ctx's error. A graceful shutdown, a command that
// publishes and exits, and a test wait with it instead of polling Lag.
//
// A stopped integration settles nothing: WaitDelivered returns
// ErrNotRunning when it is stopped at the call or stops during the wait,
// and ErrNotFound when it is deleted. A running integration delivers once
// Run runs; before, the wait lasts until ctx ends.
func (m *Integrations) WaitDelivered(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r, key, err := m.lookup(id)
	if err != nil {
		return err
	}
	b := m.b
	head := b.journal.Head(Topic)
	return b.poll(ctx, func() (bool, error) {
		b.mu.Lock()
		gone, status := r.gone, r.in.Status
		b.mu.Unlock()
		switch {
		case b.settled(key, head):
			return true, nil
		case gone:
			return false, notFound(id)
		case status != Running:
			return false, fmt.Errorf("%w: %s", ErrNotRunning, quoteID(id))
		}
		return false, nil
	})
}

// WaitDelivered returns once every integration running at the call has
// settled every event published before it, as Integrations.WaitDelivered
// waits for one; or when ctx ends, with ctx's error. An integration
// stopped at the call, or stopped or deleted during the wait, is not
// waited for. examples/server calls it between closing its HTTP server and
// closing the bus.
func (b *Bus) WaitDelivered(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	head := b.journal.Head(Topic)
	waiting := make(map[string]*runner)
	b.mu.Lock()
	for key, r := range b.runners {
		if r.ready && r.in.Status == Running {
			waiting[key] = r
		}
	}
	b.mu.Unlock()
	return b.poll(ctx, func() (bool, error) {
		for key, r := range waiting {
			b.mu.Lock()
			off := r.gone || r.in.Status != Running
			b.mu.Unlock()
			if off || b.settled(key, head) {
				delete(waiting, key)
			}
		}
		return len(waiting) == 0, nil
	})
}

// settled reports whether the integration of ref key has acknowledged
// every offset below head that the journal still holds.
func (b *Bus) settled(key string, head uint64) bool {
	c, ok := b.journal.Cursor(Topic, key)
	if !ok {
		return false
	}
	first, _ := b.journal.Storage().Bounds(Topic)
	return c.Undelivered(first, head) == 0
}

// poll calls done until it reports true or an error, or ctx ends. The
// journal tells no one when a cursor moves, and reading one is cheap: the
// wait polls, from 1 ms, doubling up to 50 ms.
func (b *Bus) poll(ctx context.Context, done func() (bool, error)) error {
	wait := time.Millisecond
	for {
		if ok, err := done(); ok || err != nil {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, 50*time.Millisecond)
	}
}
