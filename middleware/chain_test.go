package middleware_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/field"
	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/sinks"
)

func TestChain_retry_after_429(t *testing.T) {
	e := newEnv(t, middleware.Settings{})
	s := newSink(func(call int, _ *message.Message) error {
		if call == 1 {
			return &sinks.StatusError{Destination: "http://x/hook", StatusCode: 429, RetryAfter: 2 * time.Second}
		}
		return nil
	})
	w := start(e.chain.Middleware(s.handle), event("e1"))

	parked(t, e.clock, w)
	d, ok := e.clock.NextDue()
	require.True(t, ok)
	assert.Equal(t, 2*time.Second, d, "Retry-After outweighs the first backoff (at most 750ms)")
	e.clock.Advance(time.Second)
	assert.Equal(t, 1, s.Calls(), "no attempt before the Retry-After")
	e.clock.Advance(time.Second)

	require.NoError(t, w.wait(t).err)
	assert.Equal(t, 2, s.Calls())
	assert.Equal(t, []string{"1", "2"}, s.attempts)
	retries := e.entries(t, middleware.ActionRetryTriggered)
	require.Len(t, retries, 1)
	// The reason is the sink's text, verbatim: "Request to URL http://x/hook failed. Reason: ... (HTTP status code 429)".
	assert.Equal(t, (&sinks.StatusError{Destination: "http://x/hook", StatusCode: 429}).Error(), retries[0].Reason)
	assert.Equal(t, "e1", retries[0].EventID)
	assert.Equal(t, e.clock.Now().Add(-2*time.Second), retries[0].CreatedAt)
}

func TestChain_permanent_failure_rejected_at_once(t *testing.T) {
	e := newEnv(t, middleware.Settings{})
	s := newSink(always(status(400)))
	msg := event("e1")

	_, err := e.chain.Middleware(s.handle)(msg)

	require.NoError(t, err, "a rejected event is acknowledged")
	assert.Equal(t, 1, s.Calls())
	assert.Equal(t, []string{middleware.ActionEventRejected}, e.actions(t))
	got, err := e.rejected.Get(testID, "e1")
	require.NoError(t, err)
	assert.Equal(t, middleware.RejectedEvent{
		EventID:     "e1",
		Name:        "order.fulfilled",
		Tenant:      "acme",
		PublishedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Payload:     []byte(`{"order_id":"e1"}`),
		Metadata:    map[string]string{"source": "shop"},
		Reason:      status(400).Error(),
		StatusCode:  400,
		Attempts:    1,
		CreatedAt:   e.clock.Now(),
	}, got)
	assert.Equal(t, got.Reason, e.entries(t, middleware.ActionEventRejected)[0].Reason)
}

func TestChain_503_three_times_then_delivered(t *testing.T) {
	e := newEnv(t, middleware.Settings{})
	s := newSink(func(call int, _ *message.Message) error {
		if call <= 3 {
			return status(503)
		}
		return nil
	})
	w := start(e.chain.Middleware(s.handle), event("e1"))

	drive(t, e.clock, w, time.Time{}, func() bool { return w.busy() == 0 })

	require.NoError(t, w.wait(t).err)
	assert.Equal(t, 4, s.Calls())
	assert.Equal(t, map[string]int{"e1": 1}, s.delivered)
	assert.Equal(t, []string{"1", "2", "3", "4"}, s.attempts)
	assert.Equal(t, []string{
		middleware.ActionRetryTriggered, middleware.ActionRetryTriggered, middleware.ActionRetryTriggered,
	}, e.actions(t))
	assert.Contains(t, e.entries(t, middleware.ActionRetryTriggered)[0].Reason, "(HTTP status code 503)")
	assert.Equal(t, middleware.StateClosed, e.chain.Breaker().State().State)
	assert.Zero(t, e.chain.Breaker().State().ConsecutiveFailures, "the success reset the count")
}

func TestChain_max_attempts_then_rejected(t *testing.T) {
	e := newEnv(t, middleware.Settings{Retry: middleware.RetryPolicy{MaxAttempts: 3}})
	s := newSink(always(status(500)))
	w := start(e.chain.Middleware(s.handle), event("e1"))

	drive(t, e.clock, w, time.Time{}, func() bool { return w.busy() == 0 })

	require.NoError(t, w.wait(t).err)
	assert.Equal(t, 3, s.Calls())
	got, err := e.rejected.Get(testID, "e1")
	require.NoError(t, err)
	assert.Equal(t, 3, got.Attempts)
	assert.Equal(t, 500, got.StatusCode)
	assert.Equal(t, []string{
		middleware.ActionRetryTriggered, middleware.ActionRetryTriggered, middleware.ActionEventRejected,
	}, e.actions(t))
}

func TestChain_max_elapsed_time_then_rejected(t *testing.T) {
	e := newEnv(t, middleware.Settings{Retry: middleware.RetryPolicy{
		InitialInterval: time.Second, RandomizationFactor: -1, MaxElapsedTime: 2 * time.Second,
	}})
	s := newSink(always(status(502)))
	w := start(e.chain.Middleware(s.handle), event("e1"))

	drive(t, e.clock, w, time.Time{}, func() bool { return w.busy() == 0 })

	// Waits 1s after the first failure; the next wait (2s) would pass 2s.
	require.NoError(t, w.wait(t).err)
	assert.Equal(t, 2, s.Calls())
	got, err := e.rejected.Get(testID, "e1")
	require.NoError(t, err)
	assert.Equal(t, 2, got.Attempts)
}

func TestChain_paused_time_does_not_count_toward_max_elapsed_time(t *testing.T) {
	e := newEnv(t, middleware.Settings{
		Retry:   middleware.RetryPolicy{InitialInterval: time.Second, RandomizationFactor: -1, MaxElapsedTime: 10 * time.Second},
		Breaker: middleware.BreakerPolicy{WarnAfter: 1, OpenAfter: 1, CoolDown: time.Minute},
	})
	s := newSink(always(status(503)))
	w := start(e.chain.Middleware(s.handle), event("e1"))
	t0 := e.clock.Now()

	// Opens at once; the probe at 1m fails and re-opens it for another
	// minute (the cool-down: a fifth of the minute open is less).
	drive(t, e.clock, w, time.Time{}, func() bool { return s.Calls() == 2 })
	assert.Equal(t, t0.Add(time.Minute), e.clock.Now())
	assert.Equal(t, t0.Add(2*time.Minute), e.chain.Breaker().State().NextProbeAt)
	s.setAnswer(always(nil))
	drive(t, e.clock, w, time.Time{}, func() bool { return w.busy() == 0 })

	require.NoError(t, w.wait(t).err)
	assert.Equal(t, map[string]int{"e1": 1}, s.delivered, "two minutes of pause are not 10s of retrying")
	assert.Equal(t, t0.Add(2*time.Minute), e.clock.Now())
	assert.Empty(t, e.entries(t, middleware.ActionEventRejected))
}

func TestChain_cancelled_while_paused_is_not_rejected(t *testing.T) {
	e := newEnv(t, middleware.Settings{Breaker: middleware.BreakerPolicy{WarnAfter: 1, OpenAfter: 1}})
	s := newSink(always(status(503)))
	ctx, cancel := context.WithCancel(context.Background())
	msg := event("e1")
	msg.SetContext(ctx)
	w := start(e.chain.Middleware(s.handle), msg)

	// Out of its backoff, the event waits for the breaker's probe.
	drive(t, e.clock, w, time.Time{}, func() bool { return waitsForProbe(e) })
	cancel()

	err := w.wait(t).err
	require.ErrorIs(t, err, context.Canceled, "the router nacks; the event stays in the journal")
	assert.Equal(t, 1, s.Calls())
	list, _ := e.rejected.List(testID)
	assert.Empty(t, list)
	assert.Empty(t, e.entries(t, middleware.ActionEventRejected))
}

func TestChain_cancelled_during_attempt_is_not_rejected(t *testing.T) {
	e := newEnv(t, middleware.Settings{})
	ctx, cancel := context.WithCancel(context.Background())
	s := newSink(func(_ int, msg *message.Message) error {
		cancel()
		<-msg.Context().Done()
		return msg.Context().Err()
	})
	msg := event("e1")
	msg.SetContext(ctx)

	_, err := e.chain.Middleware(s.handle)(msg)

	require.ErrorIs(t, err, context.Canceled)
	assert.Empty(t, e.actions(t))
	assert.Zero(t, e.chain.Breaker().State().ConsecutiveFailures, "a stop is not the destination's failure")
}

func TestChain_rejected_store_failure_nacks(t *testing.T) {
	c, err := middleware.New(middleware.Config{
		IntegrationID: testID,
		Log:           middleware.NewMemoryLog(0),
		Rejected:      failingStore{middleware.NewMemoryRejected(0)},
	})
	require.NoError(t, err)

	_, err = c.Middleware(newSink(always(status(404))).handle)(event("e1"))

	require.ErrorIs(t, err, errDiskFull)
}

var errDiskFull = errors.New("disk full")

type failingStore struct{ middleware.RejectedStore }

func (failingStore) Put(string, middleware.RejectedEvent) ([]middleware.RejectedEvent, error) {
	return nil, errDiskFull
}

func TestChain_rejected_eviction_is_logged(t *testing.T) {
	log := middleware.NewMemoryLog(0)
	store := middleware.NewMemoryRejected(2)
	c, err := middleware.New(middleware.Config{IntegrationID: testID, Log: log, Rejected: store})
	require.NoError(t, err)
	h := c.Middleware(newSink(always(status(422))).handle)

	for _, id := range []string{"e1", "e2", "e3"} {
		_, err := h(event(id))
		require.NoError(t, err)
	}

	list, err := store.List(testID)
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.Equal(t, []string{"e3", "e2"}, []string{list[0].EventID, list[1].EventID})
	entries, err := log.Entries(testID)
	require.NoError(t, err)
	require.Len(t, entries, 4)
	assert.Equal(t, middleware.ActionRejectedEvicted, entries[0].Action)
	assert.Equal(t, "e1", entries[0].EventID)
	assert.Contains(t, entries[0].Reason, "e1")
	assert.Equal(t, middleware.ActionEventRejected, entries[1].Action)
	assert.Equal(t, "e3", entries[1].EventID)
}

func TestChain_timeout_is_retryable(t *testing.T) {
	e := newEnv(t, middleware.Settings{Timeout: 5 * time.Millisecond})
	var deadlines []time.Time
	s := newSink(func(call int, msg *message.Message) error {
		d, ok := msg.Context().Deadline()
		require.True(t, ok)
		deadlines = append(deadlines, d)
		if call == 1 {
			<-msg.Context().Done()
			return msg.Context().Err()
		}
		return msg.Context().Err()
	})
	msg := event("e1")
	w := start(e.chain.Middleware(s.handle), msg)

	drive(t, e.clock, w, time.Time{}, func() bool { return w.busy() == 0 })

	require.NoError(t, w.wait(t).err)
	assert.Equal(t, map[string]int{"e1": 1}, s.delivered, "the second attempt has a fresh deadline")
	require.Len(t, deadlines, 2)
	assert.True(t, deadlines[1].After(deadlines[0]))
	retries := e.entries(t, middleware.ActionRetryTriggered)
	require.Len(t, retries, 1)
	assert.Equal(t, "attempt timed out after 5ms: context deadline exceeded", retries[0].Reason)
	assert.Equal(t, context.Background(), msg.Context(), "the message's own context is back")
}

func TestChain_default_timeout_from_sink(t *testing.T) {
	for _, tc := range []struct {
		name     string
		settings time.Duration
		sink     time.Duration
		want     time.Duration
	}{
		{"settings win", 3 * time.Second, 10 * time.Second, 3 * time.Second},
		{"sink default", 0, 10 * time.Second, 10 * time.Second},
		{"30s", 0, 0, 30 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := middleware.New(middleware.Config{
				IntegrationID: testID, Settings: middleware.Settings{Timeout: tc.settings}, DefaultTimeout: tc.sink,
				Log: middleware.NewMemoryLog(0), Rejected: middleware.NewMemoryRejected(0),
			})
			require.NoError(t, err)
			assert.Equal(t, tc.want, c.Settings().Timeout)
			var left time.Duration
			_, err = c.Middleware(func(msg *message.Message) ([]*message.Message, error) {
				d, _ := msg.Context().Deadline()
				left = time.Until(d)
				return nil, nil
			})(event("e1"))
			require.NoError(t, err)
			assert.InDelta(t, tc.want, left, float64(time.Second))
		})
	}
}

func TestChain_panic_is_retryable(t *testing.T) {
	e := newEnv(t, middleware.Settings{})
	s := newSink(func(call int, _ *message.Message) error {
		if call == 1 {
			panic("nil map")
		}
		return nil
	})
	w := start(e.chain.Middleware(s.handle), event("e1"))

	drive(t, e.clock, w, time.Time{}, func() bool { return w.busy() == 0 })

	require.NoError(t, w.wait(t).err)
	assert.Equal(t, 2, s.Calls())
	retries := e.entries(t, middleware.ActionRetryTriggered)
	require.Len(t, retries, 1)
	assert.Equal(t, "sinkbus: sink panicked: nil map", retries[0].Reason)
}

func TestChain_on_attempt(t *testing.T) {
	var got []middleware.Attempt
	c, err := middleware.New(middleware.Config{
		IntegrationID: testID,
		Settings:      middleware.Settings{Retry: middleware.RetryPolicy{MaxAttempts: 1}},
		Log:           middleware.NewMemoryLog(0),
		Rejected:      middleware.NewMemoryRejected(0),
		OnAttempt:     func(a middleware.Attempt) { got = append(got, a) },
	})
	require.NoError(t, err)

	_, err = c.Middleware(newSink(always(nil)).handle)(event("e1"))
	require.NoError(t, err)
	_, err = c.Middleware(newSink(always(status(503))).handle)(event("e2"))
	require.NoError(t, err)

	require.Len(t, got, 2)
	assert.Equal(t, middleware.Attempt{IntegrationID: testID, EventID: "e1", Number: 1, Class: sinks.ClassDelivered, Duration: got[0].Duration}, got[0])
	assert.Equal(t, "e2", got[1].EventID)
	assert.Equal(t, sinks.ClassRetryable, got[1].Class)
	assert.Equal(t, status(503), got[1].Err)
}

func TestChain_deliver_once(t *testing.T) {
	e := newEnv(t, middleware.Settings{Breaker: middleware.BreakerPolicy{WarnAfter: 1, OpenAfter: 1}})
	s := newSink(always(status(400)))
	rejected := middleware.RejectedEvent{EventID: "e1", Name: "order.fulfilled", Payload: []byte(`{}`)}

	err := e.chain.Deliver(rejected.Message(), s.handle)
	assert.Equal(t, status(400), err)
	assert.Equal(t, []string{"1"}, s.attempts)
	assert.Empty(t, e.actions(t), "one attempt: no retry, no rejection")

	s.setAnswer(always(status(503)))
	require.Error(t, e.chain.Deliver(rejected.Message(), s.handle))
	assert.Equal(t, middleware.StateOpen, e.chain.Breaker().State().State)
	err = e.chain.Deliver(rejected.Message(), s.handle)
	require.ErrorIs(t, err, middleware.ErrCircuitOpen)
	assert.Equal(t, 2, s.Calls(), "no attempt while the circuit is open")

	e.clock.Advance(middleware.DefaultCoolDown)
	s.setAnswer(always(nil))
	require.NoError(t, e.chain.Deliver(rejected.Message(), s.handle), "the attempt is the probe")
	assert.Equal(t, middleware.StateClosed, e.chain.Breaker().State().State)
}

func TestNew_problems(t *testing.T) {
	_, err := middleware.New(middleware.Config{
		DefaultTimeout: time.Microsecond,
		Settings:       middleware.Settings{Retry: middleware.RetryPolicy{MaxAttempts: -1}},
	})
	require.Error(t, err)
	var msgs []string
	for _, fe := range field.Errors(err) {
		msgs = append(msgs, fe.Error())
	}
	assert.Equal(t, []string{
		"integration_id: required",
		"log: required",
		"rejected: required",
		"default_timeout: must be zero or at least 1ms",
		"retry.max_attempts: must be >= 1",
	}, msgs)
}

func waitsForProbe(e *env) bool {
	d, ok := e.clock.NextDue()
	next := e.chain.Breaker().State().NextProbeAt
	return ok && !next.IsZero() && e.clock.Now().Add(d).Equal(next)
}

func TestChain_deliver_never_skips(t *testing.T) {
	e := newEnv(t, middleware.Settings{Breaker: middleware.BreakerPolicy{WarnAfter: 1, OpenAfter: 1, SkipWhileOpen: true}})
	s := newSink(always(status(503)))
	require.Error(t, e.chain.Deliver(event("e1"), s.handle))

	err := e.chain.Deliver(event("e1"), s.handle)

	require.ErrorIs(t, err, middleware.ErrCircuitOpen, "a manual retry is refused, not reported delivered")
	assert.Empty(t, e.entries(t, middleware.ActionEventSkipped))
}

func TestChain_retry_after_beyond_max_elapsed_time_rejected_with_reason(t *testing.T) {
	e := newEnv(t, middleware.Settings{Retry: middleware.RetryPolicy{MaxElapsedTime: time.Hour}})
	tooMany := &sinks.StatusError{Destination: "http://x/hook", StatusCode: 429, RetryAfter: 2 * time.Hour}
	s := newSink(always(tooMany))

	_, err := e.chain.Middleware(s.handle)(event("e1"))

	require.NoError(t, err, "rejected at once: acknowledged")
	assert.Equal(t, 1, s.Calls())
	got, err := e.rejected.Get(testID, "e1")
	require.NoError(t, err)
	assert.Equal(t, 429, got.StatusCode)
	assert.Equal(t, tooMany.Error()+"; Retry-After 2h0m0s exceeds max_elapsed_time 1h0m0s", got.Reason)
	assert.Equal(t, []string{middleware.ActionEventRejected}, e.actions(t))
	assert.Equal(t, got.Reason, e.entries(t, middleware.ActionEventRejected)[0].Reason)
}

func TestChain_retry_after_beyond_what_is_left_of_max_elapsed_time(t *testing.T) {
	e := newEnv(t, middleware.Settings{Retry: middleware.RetryPolicy{
		InitialInterval: time.Minute, RandomizationFactor: -1, MaxElapsedTime: time.Hour,
	}})
	s := newSink(func(call int, _ *message.Message) error {
		if call == 1 {
			return status(503)
		}
		return &sinks.StatusError{Destination: "http://x/hook", StatusCode: 429, RetryAfter: 59*time.Minute + 30*time.Second}
	})
	w := start(e.chain.Middleware(s.handle), event("e1"))

	drive(t, e.clock, w, time.Time{}, func() bool { return w.busy() == 0 })

	require.NoError(t, w.wait(t).err)
	got, err := e.rejected.Get(testID, "e1")
	require.NoError(t, err)
	assert.Contains(t, got.Reason, "; Retry-After 59m30s exceeds the 59m0s left of max_elapsed_time 1h0m0s")
	assert.Equal(t, 2, got.Attempts)
}

func TestChain_backoff_beyond_max_elapsed_time_keeps_the_failure_as_reason(t *testing.T) {
	e := newEnv(t, middleware.Settings{Retry: middleware.RetryPolicy{
		InitialInterval: 2 * time.Hour, MaxInterval: 2 * time.Hour, RandomizationFactor: -1, MaxElapsedTime: time.Hour,
	}})
	_, err := e.chain.Middleware(newSink(always(status(503))).handle)(event("e1"))
	require.NoError(t, err)
	got, err := e.rejected.Get(testID, "e1")
	require.NoError(t, err)
	assert.Equal(t, status(503).Error(), got.Reason)
}
