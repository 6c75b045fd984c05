package middleware_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/internal/clock"
	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/sinks"
)

func clockAt(t *testing.T) *clock.Fake {
	t.Helper()
	return clock.NewFake(t0)
}

func events(n int) []*message.Message {
	msgs := make([]*message.Message, n)
	for i := range msgs {
		msgs[i] = event(fmt.Sprintf("e%d", i+1))
	}
	return msgs
}

// The whole life of an outage with the default policy: warning at 10
// failures, open at 30, probes only while open (the first after 5s, then
// every 5s, then a fifth of the time open), and every queued event
// delivered once the receiver recovers.
func TestBreaker_outage_pauses_then_delivers_everything(t *testing.T) {
	const n = 8
	e := newEnv(t, middleware.Settings{})
	s := newSink(always(status(503)))
	w := start(e.chain.Middleware(s.handle), events(n)...)

	drive(t, e.clock, w, time.Time{}, func() bool { return s.Calls() >= 30 })

	st := e.chain.Breaker().State()
	require.Equal(t, middleware.StateOpen, st.State)
	assert.Equal(t, 30, s.Calls())
	assert.Equal(t, 30, st.ConsecutiveFailures)
	assert.Equal(t, e.clock.Now(), st.OpenedAt)
	assert.Equal(t, st.OpenedAt.Add(5*time.Second), st.NextProbeAt)
	assert.Equal(t, []int{10}, e.warned())
	require.Len(t, e.entries(t, middleware.ActionCircuitWarning), 1)
	opened := e.entries(t, middleware.ActionCircuitOpened)
	require.Len(t, opened, 1)
	assert.Contains(t, opened[0].Reason, "after 30 consecutive failed attempts")

	// Two minutes of outage: probes at 5s, 10s … 30s, then 36s, 43.2s,
	// 51.84s, 62.208s, 74.6496s, 89.57952s, 107.495424s: 13.
	t0 := st.OpenedAt
	drive(t, e.clock, w, t0.Add(2*time.Minute), func() bool { return false })
	assert.Equal(t, 30+13, s.Calls(), "while open, the only attempts are the probes")
	st = e.chain.Breaker().State()
	assert.Equal(t, middleware.StateOpen, st.State)
	assert.Equal(t, t0, st.OpenedAt)
	assert.Equal(t, t0.Add(128994508800), st.NextProbeAt, "a fifth of the 107.495424s open after the last probe")
	assert.Equal(t, 13, st.FailedProbes)
	assert.Len(t, e.entries(t, middleware.ActionCircuitOpened), 1, "one per outage")
	assert.Len(t, e.entries(t, middleware.ActionCircuitProbeFailed), 4, "the 1st, 2nd, 4th and 8th failed probe")
	assert.Equal(t, n, w.busy(), "no event gave up")

	// The receiver recovers: the next probe closes the circuit.
	s.setAnswer(always(nil))
	drive(t, e.clock, w, time.Time{}, func() bool { return w.busy() == 0 })
	for range n {
		r := w.wait(t)
		require.NoError(t, r.err, r.id)
	}
	for _, m := range events(n) {
		assert.Equal(t, 1, s.delivered[m.UUID], m.UUID)
	}
	assert.Equal(t, 30+13+n, s.Calls())
	list, err := e.rejected.List(testID)
	require.NoError(t, err)
	assert.Empty(t, list, "none rejected")
	assert.Len(t, e.entries(t, middleware.ActionCircuitClosed), 1)
	assert.Equal(t, middleware.BreakerState{State: middleware.StateClosed}, e.chain.Breaker().State())
	assert.Equal(t, []int{10}, e.warned(), "one warning for the whole streak")
}

func TestBreaker_manual_reset_wakes_waiters(t *testing.T) {
	e := newEnv(t, middleware.Settings{Breaker: middleware.BreakerPolicy{WarnAfter: 2, OpenAfter: 2}})
	s := newSink(always(status(500)))
	w := start(e.chain.Middleware(s.handle), events(2)...)
	drive(t, e.clock, w, time.Time{}, func() bool { return waitsForProbe(e) })
	require.Equal(t, middleware.StateOpen, e.chain.Breaker().State().State)
	probeAt := e.chain.Breaker().State().NextProbeAt

	s.setAnswer(always(nil))
	e.chain.Breaker().Reset()

	for range 2 {
		require.NoError(t, w.wait(t).err)
	}
	assert.Equal(t, 4, s.Calls())
	assert.True(t, e.clock.Now().Before(probeAt), "delivered without waiting for the cool-down")
	assert.Equal(t, middleware.BreakerState{State: middleware.StateClosed}, e.chain.Breaker().State())
	assert.Equal(t, []string{middleware.ActionCircuitWarning, middleware.ActionCircuitOpened, middleware.ActionCircuitReset},
		filter(e.actions(t), middleware.ActionRetryTriggered))
}

func filter(actions []string, drop string) []string {
	var out []string
	for _, a := range actions {
		if a != drop {
			out = append(out, a)
		}
	}
	return out
}

func TestBreaker_skip_while_open(t *testing.T) {
	e := newEnv(t, middleware.Settings{
		Retry:   middleware.RetryPolicy{MaxAttempts: 1},
		Breaker: middleware.BreakerPolicy{WarnAfter: 2, OpenAfter: 2, SkipWhileOpen: true},
	})
	s := newSink(always(status(503)))
	h := e.chain.Middleware(s.handle)
	for _, m := range events(2) {
		_, err := h(m)
		require.NoError(t, err)
	}
	require.Equal(t, middleware.StateOpen, e.chain.Breaker().State().State)

	_, err := h(event("e3"))

	require.NoError(t, err, "a skipped event is acknowledged")
	assert.Equal(t, 2, s.Calls(), "and not attempted")
	skipped := e.entries(t, middleware.ActionEventSkipped)
	require.Len(t, skipped, 1)
	assert.Equal(t, "e3", skipped[0].EventID)
	assert.Equal(t, "Circuit open since 2026-01-01T00:00:00Z; event skipped.", skipped[0].Reason)
	_, err = e.rejected.Get(testID, "e3")
	require.ErrorIs(t, err, middleware.ErrNotFound, "skipped, not rejected")

	// After the cool-down the next event probes, and its success closes.
	e.clock.Advance(middleware.DefaultCoolDown)
	s.setAnswer(always(nil))
	_, err = h(event("e4"))
	require.NoError(t, err)
	assert.Equal(t, 1, s.delivered["e4"])
	assert.Equal(t, middleware.StateClosed, e.chain.Breaker().State().State)
}

func TestBreaker_permanent_failures_do_not_count(t *testing.T) {
	e := newEnv(t, middleware.Settings{
		Retry:   middleware.RetryPolicy{MaxAttempts: 1},
		Breaker: middleware.BreakerPolicy{WarnAfter: 2, OpenAfter: 3},
	})
	h := e.chain.Middleware(newSink(always(status(503))).handle)
	perm := e.chain.Middleware(newSink(always(status(400))).handle)

	for _, step := range []struct {
		h    message.HandlerFunc
		want int
	}{{h, 1}, {perm, 1}, {h, 2}, {perm, 2}} {
		_, err := step.h(event("e"))
		require.NoError(t, err)
		assert.Equal(t, step.want, e.chain.Breaker().State().ConsecutiveFailures)
	}
	ok := e.chain.Middleware(newSink(always(nil)).handle)
	_, err := ok(event("e"))
	require.NoError(t, err)
	assert.Zero(t, e.chain.Breaker().State().ConsecutiveFailures, "a success resets")
}

func TestBreaker_probe_with_permanent_answer_hands_over(t *testing.T) {
	clk := clockAt(t)
	b, err := middleware.NewBreaker(middleware.BreakerConfig{
		IntegrationID: testID,
		Policy:        middleware.BreakerPolicy{WarnAfter: 1, OpenAfter: 1},
		Log:           middleware.NewMemoryLog(0),
		Clock:         clk,
	})
	require.NoError(t, err)
	_, err = b.Middleware(newSink(always(status(503))).handle)(event("e1"))
	require.Error(t, err)
	clk.Advance(middleware.DefaultCoolDown)

	_, err = b.Middleware(newSink(always(status(400))).handle)(event("e2"))
	assert.Equal(t, status(400), err)

	st := b.State()
	assert.Equal(t, middleware.StateOpen, st.State, "a 4XX proves nothing about the outage")
	assert.Equal(t, clk.Now(), st.NextProbeAt, "the next attempt probes at once")
	assert.Zero(t, st.FailedProbes)
	_, err = b.Middleware(newSink(always(nil)).handle)(event("e3"))
	require.NoError(t, err)
	assert.Equal(t, middleware.StateClosed, b.State().State)
}

func TestBreaker_disabled(t *testing.T) {
	e := newEnv(t, middleware.Settings{
		Retry:   middleware.RetryPolicy{MaxAttempts: 1},
		Breaker: middleware.BreakerPolicy{Disabled: true, WarnAfter: 1, OpenAfter: 1},
	})
	s := newSink(always(status(503)))
	for _, m := range events(3) {
		_, err := e.chain.Middleware(s.handle)(m)
		require.NoError(t, err)
	}
	assert.Equal(t, 3, s.Calls())
	assert.Equal(t, middleware.BreakerState{State: middleware.StateClosed}, e.chain.Breaker().State())
	assert.Empty(t, e.warned())
}

func TestBreaker_state_changes_are_reported(t *testing.T) {
	var got []string
	log := middleware.NewMemoryLog(0)
	b, err := middleware.NewBreaker(middleware.BreakerConfig{
		IntegrationID: testID,
		Policy:        middleware.BreakerPolicy{WarnAfter: 1, OpenAfter: 1},
		Log:           log,
		OnStateChange: func(id string, s middleware.BreakerState) { got = append(got, s.State) },
	})
	require.NoError(t, err)

	_, err = b.Middleware(newSink(always(status(503))).handle)(event("e1"))
	require.Error(t, err)
	b.Reset()

	assert.Equal(t, []string{middleware.StateOpen, middleware.StateClosed}, got)
}

func TestNewBreaker_problems(t *testing.T) {
	_, err := middleware.NewBreaker(middleware.BreakerConfig{Policy: middleware.BreakerPolicy{WarnAfter: 5, OpenAfter: 2}})
	require.EqualError(t, err, "log: required\nwarn_after: must not exceed open_after")
}

func TestBreaker_probe_that_panics_hands_over(t *testing.T) {
	clk := clockAt(t)
	b, err := middleware.NewBreaker(middleware.BreakerConfig{
		IntegrationID: testID,
		Policy:        middleware.BreakerPolicy{WarnAfter: 1, OpenAfter: 1},
		Log:           middleware.NewMemoryLog(0),
		Clock:         clk,
	})
	require.NoError(t, err)
	_, err = b.Middleware(newSink(always(status(503))).handle)(event("e1"))
	require.Error(t, err)
	clk.Advance(middleware.DefaultCoolDown)

	require.Panics(t, func() {
		_, _ = b.Middleware(func(*message.Message) ([]*message.Message, error) { panic("boom") })(event("e2"))
	})

	st := b.State()
	assert.Equal(t, middleware.StateOpen, st.State, "not stuck half-open")
	assert.Equal(t, clk.Now(), st.NextProbeAt)
}

func TestBreaker_probe_waits_for_retry_after_up_to_max_cool_down(t *testing.T) {
	for _, tc := range []struct {
		name       string
		retryAfter time.Duration
		want       time.Duration
	}{
		{"shorter than the cool-down", 3 * time.Second, middleware.DefaultCoolDown},
		{"longer", 5 * time.Minute, 5 * time.Minute},
		{"capped", 3 * time.Hour, middleware.DefaultMaxCoolDown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := clockAt(t)
			b, err := middleware.NewBreaker(middleware.BreakerConfig{
				IntegrationID: testID,
				Policy:        middleware.BreakerPolicy{WarnAfter: 1, OpenAfter: 1},
				Log:           middleware.NewMemoryLog(0),
				Clock:         clk,
			})
			require.NoError(t, err)
			tooMany := &sinks.StatusError{Destination: "http://x/hook", StatusCode: 429, RetryAfter: tc.retryAfter}
			_, err = b.Middleware(newSink(always(tooMany)).handle)(event("e1"))
			require.Error(t, err)
			assert.Equal(t, clk.Now().Add(tc.want), b.State().NextProbeAt)
		})
	}
}

// Notices reach the log and the hooks in the order of the changes, however
// many goroutines make them; hooks may call State and Reset.
func TestBreaker_notices_are_ordered_under_contention(t *testing.T) {
	log := middleware.NewMemoryLog(1 << 20)
	var (
		mu       sync.Mutex
		reported []string
		b        *middleware.Breaker
	)
	b, err := middleware.NewBreaker(middleware.BreakerConfig{
		IntegrationID: testID,
		Policy:        middleware.BreakerPolicy{WarnAfter: 1, OpenAfter: 1},
		Log:           log,
		Clock:         clockAt(t),
		OnStateChange: func(_ string, s middleware.BreakerState) {
			_ = b.State() // no deadlock
			mu.Lock()
			reported = append(reported, s.State)
			mu.Unlock()
		},
		OnWarning: func(string, int) { b.Reset() }, // no deadlock either
	})
	require.NoError(t, err)
	fail := b.Middleware(newSink(always(status(503))).handle)

	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 300 {
				if g%2 == 0 {
					b.Reset()
					continue
				}
				if b.State().State == middleware.StateClosed {
					_, _ = fail(event("e1")) // opens it, unless a reset came first
				}
			}
		}()
	}
	wg.Wait()

	entries, err := log.Entries(testID)
	require.NoError(t, err)
	var fromLog []string // the state each entry reports, oldest first
	for i := len(entries) - 1; i >= 0; i-- {
		switch entries[i].Action {
		case middleware.ActionCircuitOpened:
			fromLog = append(fromLog, middleware.StateOpen)
		case middleware.ActionCircuitReset, middleware.ActionCircuitClosed:
			fromLog = append(fromLog, middleware.StateClosed)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, reported)
	assert.Contains(t, reported, middleware.StateOpen)
	assert.Equal(t, fromLog, reported, "the hook saw the changes in the log's order")
	assert.Equal(t, b.State().State, reported[len(reported)-1], "the last report is the state")
}

// Any success closes the circuit, also one whose attempt began while the
// circuit was closed and ended after other attempts had opened it.
func TestBreaker_a_success_that_ends_after_the_circuit_opened_closes_it(t *testing.T) {
	b, err := middleware.NewBreaker(middleware.BreakerConfig{
		IntegrationID: testID,
		Policy:        middleware.BreakerPolicy{WarnAfter: 1, OpenAfter: 1},
		Log:           middleware.NewMemoryLog(0),
		Clock:         clockAt(t),
	})
	require.NoError(t, err)
	began, finish := make(chan struct{}), make(chan struct{})
	slow := func(*message.Message) ([]*message.Message, error) {
		close(began)
		<-finish
		return nil, nil
	}
	done := make(chan error, 1)
	go func() {
		_, err := b.Middleware(slow)(event("slow"))
		done <- err
	}()
	<-began // under way, the circuit closed and clean
	_, err = b.Middleware(newSink(always(status(503))).handle)(event("failing"))
	require.Error(t, err)
	require.Equal(t, middleware.StateOpen, b.State().State)
	close(finish)
	require.NoError(t, <-done)
	assert.Equal(t, middleware.StateClosed, b.State().State, "the destination took the slow one: it is up")
}
