package pgstate_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/internal/pgstate"
	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/replay"
)

// A replay is a row of its integration: ended only under the integration's
// lease, aborted by any change of the integration (whoever runs it, or
// none), gone with it; its progress (the journal cursor of its group) goes
// when it ends.
func TestStore_replays_end_under_the_lease_and_with_their_integration(t *testing.T) {
	ctx := context.Background()
	s, j := open(t)
	running := func(refs ...string) []int64 {
		t.Helper()
		rows, err := s.RunningReplays(ctx, refs)
		require.NoError(t, err)
		var ids []int64
		for _, r := range rows {
			ids = append(ids, r.ID)
		}
		return ids
	}
	progress := func(ref string, id int64) bool {
		t.Helper()
		_, ok, err := j.LoadCursor(replay.CursorKey{Topic: "events", Group: pgstate.ReplayGroup(ref, id)})
		require.NoError(t, err)
		return ok
	}
	save := func(ref string, id int64) {
		t.Helper()
		require.NoError(t, j.SaveCursors(map[replay.CursorKey]replay.Cursor{
			{Topic: "events", Group: pgstate.ReplayGroup(ref, id)}: {Next: 5}}))
	}

	a, err := s.BeginReplay(ctx, "i", map[string]int{"start": 1})
	require.NoError(t, err)
	b, err := s.BeginReplay(ctx, "i", map[string]int{"start": 2})
	require.NoError(t, err)
	assert.Equal(t, []int64{a, b}, running("i", "other"))
	assert.Empty(t, running("other"))
	rows, err := s.RunningReplays(ctx, []string{"i"})
	require.NoError(t, err)
	assert.JSONEq(t, `{"start":1}`, string(rows[0].Job))
	save("i", a)
	save("i", b)

	token, err := j.AcquireLease(ctx, "i", "r1", time.Minute)
	require.NoError(t, err)
	ended, err := s.EndReplay(ctx, "i", token+1, a, pgstate.ReplayCompleted, nil, nil)
	require.NoError(t, err)
	assert.False(t, ended, "not the lease's token: another replica goes on with it")
	assert.True(t, progress("i", a))
	ended, err = s.EndReplay(ctx, "i", token, a, pgstate.ReplayCompleted, nil, nil)
	require.NoError(t, err)
	assert.True(t, ended)
	assert.False(t, progress("i", a), "its progress goes with it")
	state, _, err := s.AwaitReplay(ctx, a, time.Millisecond)
	require.NoError(t, err)
	assert.Equal(t, pgstate.ReplayCompleted, state)
	ended, err = s.EndReplay(ctx, "i", token, a, pgstate.ReplayAborted, nil, nil)
	require.NoError(t, err)
	assert.False(t, ended, "ended once")

	// Waiting on b until a change of the integration aborts it.
	waited := make(chan string, 1)
	go func() {
		state, outcome, err := s.AwaitReplay(ctx, b, time.Millisecond)
		assert.NoError(t, err)
		assert.JSONEq(t, `{"why":"changed"}`, string(outcome))
		waited <- state
	}()
	v, err := s.Put(ctx, pgstate.Integration{Ref: "i", Doc: json.RawMessage(`{"v":1}`)}, map[string]string{"why": "changed"})
	require.NoError(t, err)
	assert.Equal(t, int64(1), v)
	assert.Equal(t, pgstate.ReplayAborted, <-waited)
	assert.Empty(t, running("i"))
	assert.False(t, progress("i", b))

	c, err := s.BeginReplay(ctx, "i", nil)
	require.NoError(t, err)
	v, err = s.Put(ctx, pgstate.Integration{Ref: "i", Doc: json.RawMessage(`{"v":1}`), Version: 1}, nil)
	require.NoError(t, err)
	assert.Equal(t, int64(1), v, "unchanged")
	assert.Equal(t, []int64{c}, running("i"), "a write that changes nothing aborts nothing")
	save("i", c)
	require.NoError(t, s.Delete(ctx, "i"))
	_, _, err = s.AwaitReplay(ctx, c, time.Millisecond)
	assert.ErrorIs(t, err, pgstate.ErrNoReplay)
	assert.False(t, progress("i", c))
}

// A change is written over the version it was made on: one made on a
// version another replica has since replaced writes nothing.
func TestStore_put_is_refused_over_a_stale_version(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	doc := func(v string) json.RawMessage { return json.RawMessage(`{"v":"` + v + `"}`) }
	v, err := s.Put(ctx, pgstate.Integration{Ref: "i", Doc: doc("a")}, nil)
	require.NoError(t, err)
	require.Equal(t, int64(1), v)
	_, err = s.Put(ctx, pgstate.Integration{Ref: "i", Doc: doc("b")}, nil)
	require.ErrorIs(t, err, pgstate.ErrStale, "a creation over an existing row")
	v, err = s.Put(ctx, pgstate.Integration{Ref: "i", Doc: doc("b"), Version: 1}, nil)
	require.NoError(t, err)
	require.Equal(t, int64(2), v)
	_, err = s.Put(ctx, pgstate.Integration{Ref: "i", Doc: doc("c"), Version: 1}, nil)
	require.ErrorIs(t, err, pgstate.ErrStale, "made on version 1, which b replaced")
	rows, err := s.LoadIntegrations(ctx)
	require.NoError(t, err)
	require.Len(t, rows, 1)
	assert.JSONEq(t, `{"v":"b"}`, string(rows[0].Doc))
	assert.Equal(t, int64(2), rows[0].Version)
	require.NoError(t, s.Delete(ctx, "i"))
	_, err = s.Put(ctx, pgstate.Integration{Ref: "i", Doc: doc("d"), Version: 2}, nil)
	require.ErrorIs(t, err, pgstate.ErrStale, "deleted meanwhile")
}

// A replay's group is saved under its integration's lease, the
// integration's own group under its own.
func TestLeaseOf_a_replay_group_is_its_integrations(t *testing.T) {
	assert.Equal(t, "acme/orders", pgstate.LeaseOf(pgstate.ReplayGroup("acme/orders", 7)))
	assert.Equal(t, "acme/orders", pgstate.LeaseOf("acme/orders"))
}

// The listings report a query that cannot run, not an empty list.
func TestStore_listings_report_a_failed_query(t *testing.T) {
	s, _ := open(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.RunningReplays(ctx, []string{"erp"})
	assert.ErrorIs(t, err, context.Canceled)
	_, err = s.LoadIntegrations(ctx)
	assert.ErrorIs(t, err, context.Canceled)
}

// The entry that tells how a replay ended is written with its end, in the
// same statement: whoever sees the replay ended (AwaitReplay, on any
// replica) finds the entry in its integration's log. A replay that does
// not end there (another replica's lease) writes none.
func TestStore_a_replay_ends_with_its_log_entry(t *testing.T) {
	ctx := context.Background()
	s, j := open(t)
	log := s.Log(unfenced)
	actions := func() []string {
		t.Helper()
		entries, err := log.Entries("i")
		require.NoError(t, err)
		var out []string
		for _, e := range entries {
			out = append(out, e.Action)
		}
		return out
	}
	id, err := s.BeginReplay(ctx, "i", map[string]int{"start": 1})
	require.NoError(t, err)
	token, err := j.AcquireLease(ctx, "i", "r1", time.Minute)
	require.NoError(t, err)
	done := &middleware.LogEntry{Action: "replay_completed", Reason: "replay-1: settled", CreatedAt: time.Unix(1, 0).UTC()}

	ended, err := s.EndReplay(ctx, "i", token+1, id, pgstate.ReplayCompleted, nil, done)
	require.NoError(t, err)
	assert.False(t, ended)
	assert.Empty(t, actions(), "not ended here: not logged here")

	ended, err = s.EndReplay(ctx, "i", token, id, pgstate.ReplayCompleted, nil, done)
	require.NoError(t, err)
	assert.True(t, ended)
	state, _, err := s.AwaitReplay(ctx, id, time.Millisecond)
	require.NoError(t, err)
	assert.Equal(t, pgstate.ReplayCompleted, state)
	entries, err := log.Entries("i")
	require.NoError(t, err)
	require.Len(t, entries, 1)
	assert.Equal(t, *done, entries[0])

	ended, err = s.EndReplay(ctx, "i", token, id, pgstate.ReplayAborted, nil, done)
	require.NoError(t, err)
	assert.False(t, ended, "ended once")
	assert.Equal(t, []string{"replay_completed"}, actions(), "logged once")

	// The log keeps its last entries (three here) with these too.
	for range 3 {
		require.NoError(t, log.Append("i", middleware.LogEntry{Action: "later"}))
	}
	other, err := s.BeginReplay(ctx, "i", map[string]int{"start": 2})
	require.NoError(t, err)
	ended, err = s.EndReplay(ctx, "i", token, other, pgstate.ReplayCompleted, nil, done)
	require.NoError(t, err)
	assert.True(t, ended)
	assert.Equal(t, []string{"replay_completed", "later", "later"}, actions())
}
