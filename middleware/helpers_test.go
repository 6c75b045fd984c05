package middleware_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/internal/clock"
	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/sinks"
)

const testID = "erp-1"

// sink is a handler whose answers the test controls.
type sink struct {
	mu        sync.Mutex
	calls     int
	delivered map[string]int // successful calls per event id
	attempts  []string       // sinks.MetaAttempt of each call
	answer    func(call int, msg *message.Message) error
}

func newSink(answer func(call int, msg *message.Message) error) *sink {
	return &sink{answer: answer, delivered: make(map[string]int)}
}

func (s *sink) handle(msg *message.Message) ([]*message.Message, error) {
	s.mu.Lock()
	s.calls++
	n := s.calls
	s.attempts = append(s.attempts, msg.Metadata.Get(sinks.MetaAttempt))
	answer := s.answer
	s.mu.Unlock()
	err := answer(n, msg)
	if err == nil {
		s.mu.Lock()
		s.delivered[msg.UUID]++
		s.mu.Unlock()
	}
	return nil, err
}

func (s *sink) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// deliveredCount returns how many calls succeeded.
func (s *sink) deliveredCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, k := range s.delivered {
		n += k
	}
	return n
}

func (s *sink) setAnswer(a func(int, *message.Message) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answer = a
}

func status(code int) error {
	return &sinks.StatusError{Destination: "http://x/hook", StatusCode: code}
}

func always(err error) func(int, *message.Message) error {
	return func(int, *message.Message) error { return err }
}

// env is a chain under test with its stores and fake clock.
type env struct {
	chain    *middleware.Chain
	clock    *clock.Fake
	log      *middleware.MemoryLog
	rejected *middleware.MemoryRejected
	mu       sync.Mutex
	warnings []int // OnWarning's counts
}

func (e *env) warned() []int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]int(nil), e.warnings...)
}

func newEnv(t *testing.T, s middleware.Settings) *env {
	t.Helper()
	return newEnvLog(t, s, 1000)
}

// newEnvLog is newEnv with a log of logSize entries (zero: the default).
func newEnvLog(t *testing.T, s middleware.Settings, logSize int) *env {
	t.Helper()
	e := &env{clock: clock.NewFake(time.Time{}), log: middleware.NewMemoryLog(logSize), rejected: middleware.NewMemoryRejected(0)}
	c, err := middleware.New(middleware.Config{
		IntegrationID: testID,
		Settings:      s,
		Log:           e.log,
		Rejected:      e.rejected,
		Clock:         e.clock,
		Logger:        watermill.NopLogger{},
		OnWarning: func(id string, n int) {
			assert.Equal(t, testID, id)
			e.mu.Lock()
			e.warnings = append(e.warnings, n)
			e.mu.Unlock()
		},
	})
	require.NoError(t, err)
	e.chain = c
	return e
}

// actions returns the log's actions, oldest first.
func (e *env) actions(t *testing.T) []string {
	t.Helper()
	entries, err := e.log.Entries(testID)
	require.NoError(t, err)
	out := make([]string, len(entries))
	for i, en := range entries {
		out[len(entries)-1-i] = en.Action
	}
	return out
}

func (e *env) entries(t *testing.T, action string) []middleware.LogEntry {
	t.Helper()
	entries, err := e.log.Entries(testID)
	require.NoError(t, err)
	var out []middleware.LogEntry
	for _, en := range entries {
		if en.Action == action {
			out = append(out, en)
		}
	}
	return out
}

func event(id string) *message.Message {
	msg := message.NewMessage(id, []byte(`{"order_id":"`+id+`"}`))
	msg.Metadata.Set(sinks.MetaName, "order.fulfilled")
	msg.Metadata.Set(sinks.MetaTenant, "acme")
	msg.Metadata.Set(sinks.MetaPublishedAt, "2026-01-01T00:00:00Z")
	msg.Metadata.Set("source", "shop")
	return msg
}

// workers runs handler on each message in its own goroutine, as the router
// does, and keeps count of those still running.
type workers struct {
	running atomic.Int32
	results chan result
}

type result struct {
	id  string
	err error
}

func start(h message.HandlerFunc, msgs ...*message.Message) *workers {
	w := &workers{results: make(chan result, len(msgs))}
	w.running.Store(int32(len(msgs)))
	for _, m := range msgs {
		go func() {
			_, err := h(m)
			w.running.Add(-1)
			w.results <- result{m.UUID, err}
		}()
	}
	return w
}

func (w *workers) busy() int { return int(w.running.Load()) }

// wait returns the next result.
func (w *workers) wait(t *testing.T) result {
	t.Helper()
	select {
	case r := <-w.results:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no result")
		return result{}
	}
}

// parked waits until every running worker waits on a timer of clk: the
// code under test has nothing left to do until the clock moves.
func parked(t *testing.T, clk *clock.Fake, w *workers) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := w.busy()
		if clk.Waiters() >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d workers running, %d waiting on the clock", n, clk.Waiters())
		}
		// Short real waits only re-check the count, which may fall as
		// workers finish; correctness does not depend on them.
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		err := clk.BlockUntil(ctx, n)
		cancel()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatal(err)
		}
	}
}

// drive moves clk from timer to timer, letting the workers run in between,
// until stop returns true (checked whenever everything waits on the clock)
// or the clock reaches until (when not zero).
func drive(t *testing.T, clk *clock.Fake, w *workers, until time.Time, stop func() bool) {
	t.Helper()
	for i := 0; ; i++ {
		require.Less(t, i, 100000, "clock driven too long")
		parked(t, clk, w)
		if stop() {
			return
		}
		d, ok := clk.NextDue()
		require.True(t, ok, "nothing waits on the clock")
		if !until.IsZero() && clk.Now().Add(d).After(until) {
			clk.Set(until)
			parked(t, clk, w)
			return
		}
		clk.Advance(d)
	}
}
