// Package bustest helps an application test what it hands to sinkbus: an
// in-memory bus with a controllable clock, a recording sink, and a sink that
// fails on demand.
//
//	tb := bustest.New(t)
//	got := tb.Record("order.*")
//	checkout(ctx, tb, order) // application code taking a bus.Publisher
//	tb.MustPublish(bus.Event{Name: "order.created", Payload: p})
//	got.WaitFor(t, 1)
//	tb.MustWaitDelivered() // every integration has settled what was published
package bustest

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/internal/clock"
	"github.com/sinkbus/sinkbus/sinks"
)

// Clock is a clock that moves only when told to (Advance, Set). Code that
// waits on it (retries, breaker cool-downs, rotation) waits until a test
// advances it; BlockUntil tells when something is waiting.
type Clock = clock.Fake

// NewClock returns a Clock set to start (a fixed date when zero).
func NewClock(start time.Time) *Clock { return clock.NewFake(start) }

// SinkType is the integration type of Sink.
const SinkType = "bustest"

// Registry returns a new registry of the default registry's types (those
// of the sink packages the test imports) plus SinkType; add your own types
// to it without changing the default registry.
func Registry() *sinks.Registry {
	r := sinks.DefaultRegistry().Clone()
	if err := r.Register(sinks.Type{Name: SinkType, Decode: func(json.RawMessage) (sinks.Config, error) {
		return NewSink(), nil
	}}); err != nil {
		panic(err)
	}
	return r
}

// Bus is an in-memory bus running for the duration of a test.
type Bus struct {
	*bus.Bus
	Clock *Clock
	t     testing.TB
}

// New starts an in-memory bus on a Clock and closes it when the test ends.
// opts adjust the configuration before the bus opens.
func New(t testing.TB, opts ...func(*bus.Config)) *Bus {
	t.Helper()
	clk := NewClock(time.Time{})
	cfg := bus.Config{Clock: clk, Sinks: Registry(), CloseTimeout: 5 * time.Second, AllowPrivateNetworks: true}
	for _, o := range opts {
		o(&cfg)
	}
	b, err := bus.New(cfg)
	if err != nil {
		t.Fatalf("bustest: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	select {
	case <-b.Running():
	case err := <-done:
		t.Fatalf("bustest: bus stopped at start: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := b.Close(); err != nil {
			t.Errorf("bustest: close: %v", err)
		}
		<-done
	})
	return &Bus{Bus: b, Clock: clk, t: t}
}

// MustPublish publishes events and fails the test on error. The bus's own
// Publish(ctx, events...) is Bus's too: Bus is a bus.Publisher, for
// application code that takes one.
func (tb *Bus) MustPublish(events ...bus.Event) {
	tb.t.Helper()
	if err := tb.Publish(context.Background(), events...); err != nil {
		tb.t.Fatalf("bustest: publish: %v", err)
	}
}

var _ bus.Publisher = (*Bus)(nil)

// MustWaitDelivered waits until every running integration has settled
// (delivered, rejected or skipped) what was published before the call, as
// bus.Bus.WaitDelivered does, and fails the test after 10 s of real time.
// A retry that waits on Clock settles only once the test advances it.
func (tb *Bus) MustWaitDelivered() {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tb.WaitDelivered(ctx); err != nil {
		tb.t.Fatalf("bustest: what was published is not delivered after 10s: %v", err)
	}
}

// Create creates an integration and fails the test on error.
func (tb *Bus) Create(in bus.Integration) bus.Integration {
	tb.t.Helper()
	out, err := tb.Integrations().Create(context.Background(), in)
	if err != nil {
		tb.t.Fatalf("bustest: create integration: %v", err)
	}
	return out
}

// Record creates an integration observing patterns that records what it
// receives, and returns its sink.
func (tb *Bus) Record(observes ...string) *Sink {
	tb.t.Helper()
	s := NewSink()
	tb.Create(bus.Integration{Observes: observes, Sink: s})
	return s
}

// NewSinkIntegration creates in with a new Sink and returns the sink.
func (tb *Bus) NewSinkIntegration(in bus.Integration) *Sink {
	tb.t.Helper()
	s := NewSink()
	in.Sink = s
	tb.Create(in)
	return s
}

// Sink is a sink that records every event delivered to it and fails on
// demand. Use it as an Integration's Sink. Safe for concurrent use.
type Sink struct {
	mu        sync.Mutex
	delivered []bus.Event
	attempts  int
	failures  []error
	changed   chan struct{}
	closed    atomic.Bool
}

// NewSink returns an empty recording sink.
func NewSink() *Sink { return &Sink{changed: make(chan struct{})} }

// FailNext makes the next n attempts fail with an HTTP-like status: 408,
// 429 and 5XX are retryable, other statuses permanent.
func (s *Sink) FailNext(n, status int) {
	s.FailNextWith(n, &sinks.StatusError{Destination: "bustest", StatusCode: status})
}

// FailNextWith makes the next n attempts fail with err.
func (s *Sink) FailNextWith(n int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failures = append(s.failures, err)
	}
}

// Events returns what was delivered so far, in delivery order.
func (s *Sink) Events() []bus.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]bus.Event(nil), s.delivered...)
}

// Attempts returns how many deliveries were attempted, failed ones included.
func (s *Sink) Attempts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts
}

// WaitFor waits until at least n events were delivered and returns them; it
// fails the test after 10 s of real time.
func (s *Sink) WaitFor(t testing.TB, n int) []bus.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := s.Wait(ctx, n)
	if err != nil {
		t.Fatalf("bustest: %d of %d events delivered after 10s", len(got), n)
	}
	return got
}

// Wait waits until at least n events were delivered, or ctx is done, and
// returns what was delivered: WaitFor for code without a testing.TB.
func (s *Sink) Wait(ctx context.Context, n int) ([]bus.Event, error) {
	for {
		s.mu.Lock()
		got, changed := len(s.delivered), s.changed
		s.mu.Unlock()
		if got >= n {
			return s.Events(), nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return s.Events(), ctx.Err()
		}
	}
}

// Type implements sinks.Config.
func (s *Sink) Type() string { return SinkType }

// Validate implements sinks.Config.
func (s *Sink) Validate() error { return nil }

// Masked implements sinks.Config.
func (s *Sink) Masked() sinks.Config { return s }

// MarshalJSON shows the sink as an empty configuration.
func (s *Sink) MarshalJSON() ([]byte, error) { return []byte("{}"), nil }

// NewPublisher implements sinks.Config: the sink is its own publisher, and
// keeps recording across restarts of its integration.
func (s *Sink) NewPublisher(sinks.Env) (message.Publisher, error) {
	s.closed.Store(false)
	return s, nil
}

// Publish implements message.Publisher.
func (s *Sink) Publish(_ string, msgs ...*message.Message) error {
	if s.closed.Load() {
		return sinks.ErrClosed
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range msgs {
		if err := m.Context().Err(); err != nil {
			return err
		}
		s.attempts++
		if len(s.failures) > 0 {
			err := s.failures[0]
			s.failures = s.failures[1:]
			s.notify()
			return err
		}
		s.delivered = append(s.delivered, bus.EventFromMessage(m))
		s.notify()
	}
	return nil
}

func (s *Sink) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Close implements message.Publisher.
func (s *Sink) Close() error {
	s.closed.Store(true)
	return nil
}

// String names the sink in test failures.
func (s *Sink) String() string { return fmt.Sprintf("bustest.Sink(%d delivered)", len(s.Events())) }
