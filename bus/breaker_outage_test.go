package bus_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/bustest"
	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/sinks"
)

// outageSink answers 503 while down and records what it delivered, per
// event. Safe for concurrent use.
type outageSink struct {
	name      string // tells destinations apart in the JSON form
	broken    bool   // NewPublisher fails: a sink that cannot start
	mu        sync.Mutex
	down      bool
	attempts  int
	delivered map[string]int
}

const outageSinkType = "outage"

func (s *outageSink) Type() string         { return outageSinkType }
func (s *outageSink) Validate() error      { return nil }
func (s *outageSink) Masked() sinks.Config { return s }
func (s *outageSink) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{"name": s.name})
}

func (s *outageSink) NewPublisher(sinks.Env) (message.Publisher, error) {
	if s.broken {
		return nil, errors.New("cannot reach the broker")
	}
	return s, nil
}
func (s *outageSink) Close() error { return nil }

func (s *outageSink) Publish(_ string, msgs ...*message.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range msgs {
		s.attempts++
		if s.down {
			return &sinks.StatusError{Destination: "http://erp.test/hooks", StatusCode: http.StatusServiceUnavailable}
		}
		s.delivered[m.UUID]++
	}
	return nil
}

func (s *outageSink) setDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

func (s *outageSink) counts() (attempts, delivered int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.delivered {
		delivered += n
	}
	return s.attempts, delivered
}

// outageBus is a test bus that knows the outage sink type.
func outageBus(t *testing.T) *bustest.Bus {
	reg := bustest.Registry()
	require.NoError(t, reg.Register(sinks.Type{Name: outageSinkType, Decode: func(json.RawMessage) (sinks.Config, error) {
		return nil, errors.New("not from JSON")
	}}))
	return bustest.New(t, func(c *bus.Config) { c.Sinks = reg })
}

// retryUntilOpen moves the clock from timer to timer, each of the inFlight
// deliveries backing off, until the circuit of id opens.
func retryUntilOpen(t *testing.T, tb *bustest.Bus, id string, inFlight int) {
	t.Helper()
	for i := 0; ; i++ {
		require.Less(t, i, 1000, "the circuit never opened")
		st, err := tb.Integrations().Circuit(ctx, id)
		require.NoError(t, err)
		if st.State == middleware.StateOpen {
			return
		}
		require.NoError(t, tb.Clock.BlockUntil(ctx, inFlight))
		d, ok := tb.Clock.NextDue()
		require.True(t, ok)
		tb.Clock.Advance(d)
	}
}

// probesWithin returns how many probes the default breaker policy makes in
// d after the circuit opens (BreakerPolicy.CoolDownAfter).
func probesWithin(d time.Duration) int {
	var policy middleware.BreakerPolicy
	n, at := 0, middleware.DefaultCoolDown
	for ; at <= d; n++ {
		at += policy.CoolDownAfter(at)
	}
	return n
}

// parkedOpen waits (real time, bounded) until the circuit of id is open and
// every in-flight delivery waits on the clock: nothing moves until it does.
func parkedOpen(t *testing.T, tb *bustest.Bus, id string, inFlight int) bool {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		st, err := tb.Integrations().Circuit(ctx, id)
		require.NoError(t, err)
		if st.State == middleware.StateOpen && tb.Clock.Waiters() >= inFlight {
			return true
		}
		wait, cancel := context.WithTimeout(ctx, time.Millisecond)
		err = tb.Clock.BlockUntil(wait, inFlight)
		cancel()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatal(err)
		}
	}
	return false
}

// A receiver that answers 503 for two days, behind the default delivery
// settings (30 attempts, 24h, breaker at 30) and the default concurrency:
// eight events wait in the breaker, the other 92 in the journal behind
// them. Nothing is rejected, probes are the only attempts while open, and
// once the receiver recovers every event is delivered exactly once.
func TestBus_breaker_48h_outage_loses_nothing(t *testing.T) {
	const (
		n           = 100
		concurrency = 8 // bus.Config.Concurrency's default
		id          = "erp"
	)
	tb := outageBus(t)
	sink := &outageSink{down: true, delivered: make(map[string]int)}
	tb.Create(bus.Integration{ID: id, Observes: []string{"order.*"}, Sink: sink})

	events := make([]bus.Event, n)
	for i := range events {
		events[i] = bus.Event{ID: fmt.Sprintf("o-%03d", i), Name: "order.created", Payload: json.RawMessage(`{}`)}
	}
	tb.MustPublish(events...)

	retryUntilOpen(t, tb, id, concurrency)
	st, err := tb.Integrations().Circuit(ctx, id)
	require.NoError(t, err)
	opened := st.OpenedAt

	// Two days open: from probe to probe.
	for {
		require.True(t, parkedOpen(t, tb, id, concurrency), "deliveries parked behind the open circuit")
		st, err = tb.Integrations().Circuit(ctx, id)
		require.NoError(t, err)
		if st.NextProbeAt.After(opened.Add(48 * time.Hour)) {
			break
		}
		tb.Clock.Set(st.NextProbeAt)
	}

	attempts, delivered := sink.counts()
	assert.Zero(t, delivered)
	assert.Equal(t, probesWithin(48*time.Hour), st.FailedProbes, "one probe per cool-down")
	assert.Equal(t, attempts, st.ConsecutiveFailures, "every attempt counted once")
	toOpen := attempts - st.FailedProbes
	assert.GreaterOrEqual(t, toOpen, middleware.DefaultOpenAfter)
	assert.Less(t, toOpen, middleware.DefaultOpenAfter+concurrency,
		"besides probes, only attempts already under way when it opened: no hot loop")
	rejected, err := tb.Integrations().Rejected(ctx, id)
	require.NoError(t, err)
	assert.Empty(t, rejected, "nothing rejected")
	lag, err := tb.Integrations().Lag(ctx, id)
	require.NoError(t, err)
	assert.EqualValues(t, n, lag, "every event waits")

	// The log still tells how the outage began.
	log, err := tb.Integrations().Log(ctx, id)
	require.NoError(t, err)
	count := func(action string) int {
		c := 0
		for _, e := range log {
			if e.Action == action {
				c++
			}
		}
		return c
	}
	assert.Equal(t, 1, count(middleware.ActionCircuitWarning))
	assert.Equal(t, 1, count(middleware.ActionCircuitOpened))
	assert.Equal(t, 9, count(middleware.ActionCircuitProbeFailed), "the 1st, 2nd, 4th … 256th")
	assert.Zero(t, count(middleware.ActionEventRejected))

	// The receiver recovers; the next probe closes the circuit and every
	// event goes through, once.
	sink.setDown(false)
	tb.Clock.Set(st.NextProbeAt)
	require.Eventually(t, func() bool {
		lag, err := tb.Integrations().Lag(ctx, id)
		return err == nil && lag == 0
	}, 10*time.Second, time.Millisecond)

	after, delivered := sink.counts()
	assert.Equal(t, n, delivered)
	assert.Equal(t, attempts+n, after, "one attempt per event after the recovery")
	sink.mu.Lock()
	for _, e := range events {
		assert.Equal(t, 1, sink.delivered[e.ID], e.ID)
	}
	sink.mu.Unlock()
	rejected, err = tb.Integrations().Rejected(ctx, id)
	require.NoError(t, err)
	assert.Empty(t, rejected)
	st, err = tb.Integrations().Circuit(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, middleware.StateClosed, st.State)
	log, err = tb.Integrations().Log(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, 1, count(middleware.ActionCircuitClosed))
	assert.Equal(t, 1, count(middleware.ActionCircuitWarning), "not pushed out")
	assert.Equal(t, 1, count(middleware.ActionCircuitOpened), "not pushed out")
}
