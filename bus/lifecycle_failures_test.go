package bus_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/replay"
)

// errInjected is the failure flakyStorage injects: what a process out of
// file descriptors gets.
var errInjected = fmt.Errorf("injected: %w", syscall.EMFILE)

// flakyStorage fails its failAt-th fallible call (counted from 1 across
// every method) once; zero fails none. It counts the calls it sees.
type flakyStorage struct {
	replay.Storage
	failAt int64
	calls  atomic.Int64
}

func (s *flakyStorage) fail() error {
	if s.calls.Add(1) == s.failAt {
		return errInjected
	}
	return nil
}

func (s *flakyStorage) Append(topic string, recs []*replay.Record, now func() time.Time) error {
	if err := s.fail(); err != nil {
		return err
	}
	return s.Storage.Append(topic, recs, now)
}

func (s *flakyStorage) Read(topic string, from uint64, max int) ([]replay.Record, error) {
	if err := s.fail(); err != nil {
		return nil, err
	}
	return s.Storage.Read(topic, from, max)
}

func (s *flakyStorage) Seek(topic string, t time.Time) (uint64, error) {
	if err := s.fail(); err != nil {
		return 0, err
	}
	return s.Storage.Seek(topic, t)
}

func (s *flakyStorage) Trim(before time.Time) (int, error) {
	if err := s.fail(); err != nil {
		return 0, err
	}
	return s.Storage.Trim(before)
}

func (s *flakyStorage) Cursors() (map[replay.CursorKey]replay.Cursor, error) {
	if err := s.fail(); err != nil {
		return nil, err
	}
	return s.Storage.Cursors()
}

func (s *flakyStorage) SaveCursors(c map[replay.CursorKey]replay.Cursor) error {
	if err := s.fail(); err != nil {
		return err
	}
	return s.Storage.SaveCursors(c)
}

func (s *flakyStorage) DeleteCursor(k replay.CursorKey) error {
	if err := s.fail(); err != nil {
		return err
	}
	return s.Storage.DeleteCursor(k)
}

// received collects what in-process handlers got.
type received struct {
	mu  sync.Mutex
	got map[string]map[string]bool // handler -> event ids
}

func (r *received) handler(name string) bus.HandlerFunc {
	return func(_ context.Context, e bus.Event) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.got[name] == nil {
			r.got[name] = map[string]bool{}
		}
		r.got[name][e.ID] = true
		return nil
	}
}

func (r *received) has(name string, ids ...string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range ids {
		if !r.got[name][id] {
			return false
		}
	}
	return true
}

// lifecycleUnderFailures runs every lifecycle operation once on a bus over
// st: create (at the head, and from a time), publish, replay, update, stop,
// start, delete, close. An operation may fail with the injected error; it
// is then tried again, and must work. It returns what the bus did wrong.
func lifecycleUnderFailures(t *testing.T, st replay.Storage) {
	rcv := &received{got: map[string]map[string]bool{}}
	// try runs op until it works, at most twice: only one call fails.
	try := func(what string, op func() error) {
		t.Helper()
		err := op()
		if err == nil {
			return
		}
		require.ErrorIs(t, err, syscall.EMFILE, "%s failed with something else than the injected failure", what)
		require.NoError(t, op(), "%s again, after one failure", what)
	}
	var b *bus.Bus
	try("New", func() (err error) {
		b, err = bus.New(bus.Config{Storage: st, CloseTimeout: 5 * time.Second})
		return err
	})
	runCtx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- b.Run(runCtx) }()
	<-b.Running()
	defer func() {
		cancel()
		require.NoError(t, b.Close(), "Close: every integration and replay stops in time")
		<-ran
	}()
	ints := b.Integrations()
	delivered := func(name string, ids ...string) {
		t.Helper()
		require.Eventually(t, func() bool { return rcv.has(name, ids...) }, 20*time.Second, time.Millisecond,
			"%s got %v", name, ids)
	}
	start := time.Now()
	replayed := func(id string) {
		t.Helper()
		var job replay.Job
		try("Replay "+id, func() (err error) {
			job, err = ints.Replay(ctx, id, replay.Request{From: start}) // a Seek to start at
			return err
		})
		wait, done := context.WithTimeout(ctx, 20*time.Second)
		defer done()
		require.NoError(t, job.Wait(wait), "replay of %s", id)
	}

	try("Create a", func() error {
		_, err := ints.Create(ctx, bus.Integration{ID: "a", Sink: rcv.handler("a")})
		return err
	})
	try("Publish e1", func() error { return b.Publish(ctx, bus.Event{ID: "e1", Name: "order.created"}) })
	delivered("a", "e1")
	replayed("a")
	try("Update a", func() error {
		_, err := ints.UpdateFunc(ctx, "a", func(in *bus.Integration) error {
			in.Name = "A"
			return nil
		})
		return err
	})
	try("Stop a", func() error { _, err := ints.Stop(ctx, "a"); return err })
	try("Start a", func() error { _, err := ints.Start(ctx, "a"); return err })
	try("Create b", func() error {
		_, err := ints.Create(ctx, bus.Integration{ID: "b", Sink: rcv.handler("b"), StartsAt: start})
		return err
	})
	try("Publish e2", func() error { return b.Publish(ctx, bus.Event{ID: "e2", Name: "order.created"}) })
	delivered("a", "e2")
	delivered("b", "e1", "e2")
	replayed("b")
	try("Delete b", func() error { return ints.Delete(ctx, "b") })
	_, err := ints.Get(ctx, "b")
	require.ErrorIs(t, err, bus.ErrNotFound)
	try("Create b again", func() error {
		_, err := ints.Create(ctx, bus.Integration{ID: "b", Sink: rcv.handler("b2")})
		return err
	})
	try("Publish e3", func() error { return b.Publish(ctx, bus.Event{ID: "e3", Name: "order.created"}) })
	delivered("a", "e3")
	delivered("b2", "e3")
}

// A storage that fails each of its calls once, in turn (a Seek, a cursor
// save, a read...): whatever failed, the operation that met it can be
// tried again, every later operation works, and Close stops everything in
// time. A start that fails half-way leaves the bus as it was.
func TestLifecycle_a_storage_failing_each_call_once_breaks_nothing(t *testing.T) {
	clean := &flakyStorage{Storage: replay.NewMemory()}
	lifecycleUnderFailures(t, clean)
	calls := clean.calls.Load()
	require.Greater(t, calls, int64(10))
	for k := int64(1); k <= calls; k++ {
		t.Run(fmt.Sprintf("call_%d", k), func(t *testing.T) {
			t.Parallel()
			lifecycleUnderFailures(t, &flakyStorage{Storage: replay.NewMemory(), failAt: k})
		})
	}
}

// What the report of this issue saw: a replay whose Seek fails once. The
// next replay works, and an integration created after it starts.
func TestReplay_whose_start_fails_leaves_the_router_working(t *testing.T) {
	st := &seekOnce{Storage: replay.NewMemory()}
	b := startBus(t, bus.Config{Storage: st, CloseTimeout: 5 * time.Second})
	rcv := &received{got: map[string]map[string]bool{}}
	_, err := b.Integrations().Create(ctx, bus.Integration{ID: "a", Sink: rcv.handler("a")})
	require.NoError(t, err)
	require.NoError(t, b.Publish(ctx, bus.Event{ID: "e1", Name: "order.created"}))
	from := time.Now().Add(-time.Hour)
	st.failIn.Store(2) // the count's Seek works, the start's fails
	_, err = b.Integrations().Replay(ctx, "a", replay.Request{From: from})
	require.True(t, errors.Is(err, syscall.EMFILE), "the Seek's failure: %v", err)
	job, err := b.Integrations().Replay(ctx, "a", replay.Request{From: from})
	require.NoError(t, err, "a replay after the failed one")
	require.NoError(t, job.Wait(ctx))
	_, err = b.Integrations().Create(ctx, bus.Integration{ID: "b", Sink: rcv.handler("b")})
	require.NoError(t, err, "an integration created after the failed replay")
	assert.NotContains(t, fmt.Sprint(err), "journal closed")
}

// seekOnce fails the failIn-th Seek from now, once.
type seekOnce struct {
	replay.Storage
	failIn atomic.Int32
}

func (s *seekOnce) Seek(topic string, t time.Time) (uint64, error) {
	if s.failIn.Add(-1) == 0 {
		return 0, errInjected
	}
	return s.Storage.Seek(topic, t)
}
