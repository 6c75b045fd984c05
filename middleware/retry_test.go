package middleware_test

import (
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/internal/clock"
	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/sinks"
)

func TestRetry_backoff_grows_without_jitter(t *testing.T) {
	clk := clock.NewFake(t0)
	s := newSink(func(call int, _ *message.Message) error {
		if call <= 4 {
			return errors.New("connection reset")
		}
		return nil
	})
	h := middleware.Retry{
		Policy: middleware.RetryPolicy{InitialInterval: time.Second, MaxInterval: 3 * time.Second, RandomizationFactor: -1},
		Clock:  clk,
	}.Middleware(s.handle)
	w := start(h, event("e1"))

	var waits []time.Duration
	drive(t, clk, w, time.Time{}, func() bool {
		if d, ok := clk.NextDue(); ok {
			waits = append(waits, d)
		}
		return w.busy() == 0
	})

	require.NoError(t, w.wait(t).err)
	assert.Equal(t, []time.Duration{time.Second, 2 * time.Second, 3 * time.Second, 3 * time.Second}, waits)
	assert.Equal(t, []string{"1", "2", "3", "4", "5"}, s.attempts)
}

func TestRetry_jitter_spreads_waits(t *testing.T) {
	seen := make(map[time.Duration]bool)
	for range 20 {
		clk := clock.NewFake(t0)
		h := middleware.Retry{Clock: clk}.Middleware(newSink(func(call int, _ *message.Message) error {
			if call == 1 {
				return errors.New("connection reset")
			}
			return nil
		}).handle)
		w := start(h, event("e1"))
		parked(t, clk, w)
		d, _ := clk.NextDue()
		assert.GreaterOrEqual(t, d, 250*time.Millisecond)
		assert.LessOrEqual(t, d, 750*time.Millisecond)
		seen[d] = true
		clk.Advance(d)
		require.NoError(t, w.wait(t).err)
	}
	assert.Greater(t, len(seen), 10, "20 first waits, spread over 250ms to 750ms")
}

func TestRetry_classes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		err   error
		calls int
	}{
		{"permanent", sinks.Permanent(errors.New("invalid destination")), 1},
		{"status 413", status(413), 1},
		{"status 2XX is delivered", status(202), 1},
		{"retryable", status(408), 3},
		{"unclassified", errors.New("eof"), 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := clock.NewFake(t0)
			s := newSink(always(tc.err))
			h := middleware.Retry{Policy: middleware.RetryPolicy{MaxAttempts: 3}, Clock: clk}.Middleware(s.handle)
			w := start(h, event("e1"))
			drive(t, clk, w, time.Time{}, func() bool { return w.busy() == 0 })
			_ = w.wait(t)
			assert.Equal(t, tc.calls, s.Calls())
		})
	}
}
