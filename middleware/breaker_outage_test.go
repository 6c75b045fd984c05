package middleware_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/middleware"
)

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

// A destination that recovers gets deliveries again within max(5s, 20 %
// of the outage so far), for outages from seconds to an hour, with one
// request per probe meanwhile (a few dozen in an hour); and the default
// 50-entry log still tells the whole outage: warning, opening, failed
// probes, closing.
func TestBreaker_recovery_is_found_within_a_fifth_of_the_outage(t *testing.T) {
	for _, outage := range []time.Duration{3 * time.Second, 10 * time.Second, 50 * time.Second,
		3 * time.Minute, 17 * time.Minute, time.Hour} {
		t.Run(outage.String(), func(t *testing.T) {
			e := newEnvLog(t, middleware.Settings{}, 0)
			s := newSink(always(status(500)))
			const n = 8
			w := start(e.chain.Middleware(s.handle), events(n)...)
			began := e.clock.Now()
			drive(t, e.clock, w, time.Time{}, func() bool { return e.chain.Breaker().State().State == middleware.StateOpen })
			opened := e.chain.Breaker().State().OpenedAt

			recovered := opened.Add(outage)
			drive(t, e.clock, w, recovered, func() bool { return false })
			probes := e.chain.Breaker().State().FailedProbes
			assert.Equal(t, probesWithin(outage), probes)
			assert.LessOrEqual(t, probes, 40, "a few dozen requests in an hour at most")
			s.setAnswer(always(nil))
			drive(t, e.clock, w, time.Time{}, func() bool { return s.deliveredCount() > 0 })
			resumed := e.clock.Now().Sub(recovered)
			bound := max(5*time.Second, recovered.Sub(began)/5)
			assert.LessOrEqual(t, resumed, bound, "delivery resumed %s after the recovery", resumed)

			drive(t, e.clock, w, time.Time{}, func() bool { return w.busy() == 0 })
			for range n {
				require.NoError(t, w.wait(t).err)
			}
			entries, err := e.log.Entries(testID)
			require.NoError(t, err)
			require.LessOrEqual(t, len(entries), middleware.DefaultLogSize)
			assert.Equal(t, middleware.ActionCircuitClosed, entries[0].Action, "the newest: the circuit closed")
			assert.Len(t, e.entries(t, middleware.ActionCircuitWarning), 1, "still in the log")
			assert.Len(t, e.entries(t, middleware.ActionCircuitOpened), 1, "still in the log")
			if probes > 0 {
				assert.NotEmpty(t, e.entries(t, middleware.ActionCircuitProbeFailed))
			}
		})
	}
}

// Two days of outage with the default policy (30 attempts, 24h) and the
// default 50-entry log: probes are the only attempts, no event spends its
// attempts or its time on them, nothing is rejected, and the log still
// shows how the outage began. One event alone opens the circuit too.
func TestBreaker_48h_outage_rejects_nothing_and_delivers_each_event_once(t *testing.T) {
	for _, n := range []int{1, 20} {
		t.Run(strconv.Itoa(n)+" events", func(t *testing.T) { outage48h(t, n) })
	}
}

func outage48h(t *testing.T, n int) {
	e := newEnvLog(t, middleware.Settings{}, 0)
	s := newSink(always(status(503)))
	w := start(e.chain.Middleware(s.handle), events(n)...)

	drive(t, e.clock, w, time.Time{}, func() bool { return e.chain.Breaker().State().State == middleware.StateOpen })
	opened := e.chain.Breaker().State().OpenedAt
	drive(t, e.clock, w, opened.Add(48*time.Hour), func() bool { return false })

	st := e.chain.Breaker().State()
	require.Equal(t, middleware.StateOpen, st.State)
	assert.Equal(t, opened, st.OpenedAt)
	wantProbes := probesWithin(48 * time.Hour)
	assert.Equal(t, wantProbes, st.FailedProbes, "a probe every cool-down")
	assert.Equal(t, s.Calls(), st.ConsecutiveFailures, "every attempt counted once")
	toOpen := st.ConsecutiveFailures - st.FailedProbes
	assert.GreaterOrEqual(t, toOpen, middleware.DefaultOpenAfter)
	assert.Less(t, toOpen, middleware.DefaultOpenAfter+n, "besides probes, only attempts already under way when it opened")
	assert.Equal(t, n, w.busy(), "every event still waits")
	list, err := e.rejected.List(testID)
	require.NoError(t, err)
	assert.Empty(t, list)

	// The log keeps the outage's beginning: one circuit_opened, failed
	// probes thinned out (1st, 2nd, 4th … 256th), no retry_triggered for
	// the probes.
	assert.Len(t, e.entries(t, middleware.ActionCircuitWarning), 1)
	assert.Len(t, e.entries(t, middleware.ActionCircuitOpened), 1)
	probes := e.entries(t, middleware.ActionCircuitProbeFailed)
	require.Len(t, probes, 9)
	assert.Contains(t, probes[0].Reason, "256 failed probes since the circuit opened at "+opened.UTC().Format(time.RFC3339))
	assert.Contains(t, probes[0].Reason, "(HTTP status code 503)")
	assert.Len(t, e.entries(t, middleware.ActionRetryTriggered), middleware.DefaultOpenAfter-1,
		"the failures that opened the circuit, less the last")

	// The receiver recovers: the next probe closes the circuit and every
	// event is delivered once.
	s.setAnswer(always(nil))
	before := s.Calls()
	drive(t, e.clock, w, time.Time{}, func() bool { return w.busy() == 0 })
	for range n {
		r := w.wait(t)
		require.NoError(t, r.err, r.id)
	}
	for _, m := range events(n) {
		assert.Equal(t, 1, s.delivered[m.UUID], m.UUID)
	}
	assert.Equal(t, before+n, s.Calls(), "one attempt each after the recovery")
	list, err = e.rejected.List(testID)
	require.NoError(t, err)
	assert.Empty(t, list, "none rejected")
	closed := e.entries(t, middleware.ActionCircuitClosed)
	require.Len(t, closed, 1)
	assert.Contains(t, closed[0].Reason, "failed probes)")
	assert.Len(t, e.entries(t, middleware.ActionCircuitOpened), 1, "still in the log")
	assert.Len(t, e.entries(t, middleware.ActionCircuitWarning), 1, "still in the log")
	assert.Equal(t, middleware.BreakerState{State: middleware.StateClosed}, e.chain.Breaker().State())
}

// Attempts an event made before the outage still count, but the outage
// adds none: an event one attempt short of MaxAttempts survives any number
// of failed probes, and is rejected only by a failure of its own once the
// circuit is closed.
func TestRetry_outage_spends_no_attempts(t *testing.T) {
	e := newEnv(t, middleware.Settings{
		Retry:   middleware.RetryPolicy{MaxAttempts: 3, InitialInterval: time.Second, RandomizationFactor: -1},
		Breaker: middleware.BreakerPolicy{WarnAfter: 3, OpenAfter: 3, CoolDown: time.Minute, MaxCoolDown: time.Minute},
	})
	s := newSink(always(status(503)))
	w := start(e.chain.Middleware(s.handle), event("e1"))

	// Attempts 1 and 2 are the event's; 3 opens the circuit: the outage's.
	drive(t, e.clock, w, time.Time{}, func() bool { return s.Calls() == 3+50 })
	assert.Equal(t, 50, e.chain.Breaker().State().FailedProbes)
	assert.Equal(t, 1, w.busy(), "waits for the next probe")

	// A manual reset closes the circuit; the destination still fails, and
	// that failure is the event's third.
	e.chain.Breaker().Reset()
	drive(t, e.clock, w, time.Time{}, func() bool { return w.busy() == 0 })

	require.NoError(t, w.wait(t).err)
	got, err := e.rejected.Get(testID, "e1")
	require.NoError(t, err, "its own third failure rejects it")
	assert.Equal(t, 3+50+1, got.Attempts, "attempts made, probes included")
	assert.Equal(t, []string{"1", "2", "3"}, s.attempts[:3])
}
