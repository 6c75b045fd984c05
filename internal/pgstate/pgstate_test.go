package pgstate_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/internal/pgstate"
	"github.com/sinkbus/sinkbus/internal/pgtest"
	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/replay/postgres"
)

func open(t *testing.T) (*pgstate.Store, *postgres.Storage) {
	t.Helper()
	ctx := context.Background()
	pool, schema := pgtest.Pool(t), pgtest.Schema(t)
	j, err := postgres.Open(ctx, postgres.Config{Pool: pool, Schema: schema})
	require.NoError(t, err)
	t.Cleanup(func() { _ = j.Close() })
	s, err := pgstate.Open(ctx, pool, schema, 3, 2)
	require.NoError(t, err)
	return s, j
}

func unfenced(string) int64 { return -1 }

// The log keeps the last entries of each integration, newest first; the
// rejected store the last events, one per event id, telling which it
// evicted.
func TestStore_log_and_rejected_keep_the_last_ones(t *testing.T) {
	s, _ := open(t)
	log := s.Log(unfenced)
	for _, a := range []string{"a1", "a2", "a3", "a4"} {
		require.NoError(t, log.Append("i", middleware.LogEntry{Action: a, CreatedAt: time.Unix(1, 0).UTC()}))
	}
	require.NoError(t, log.Append("other", middleware.LogEntry{Action: "x"}))
	got, err := log.Entries("i")
	require.NoError(t, err)
	var actions []string
	for _, e := range got {
		actions = append(actions, e.Action)
	}
	assert.Equal(t, []string{"a4", "a3", "a2"}, actions)
	require.NoError(t, log.Drop("i"))
	got, err = log.Entries("i")
	require.NoError(t, err)
	assert.Empty(t, got)

	rej := s.Rejected(unfenced)
	ev, err := rej.Put("i", middleware.RejectedEvent{EventID: "e1", Reason: "first"})
	require.NoError(t, err)
	assert.Empty(t, ev)
	_, err = rej.Put("i", middleware.RejectedEvent{EventID: "e2"})
	require.NoError(t, err)
	ev, err = rej.Put("i", middleware.RejectedEvent{EventID: "e1", Reason: "again"})
	require.NoError(t, err)
	assert.Empty(t, ev, "the same event id is replaced")
	ev, err = rej.Put("i", middleware.RejectedEvent{EventID: "e3"})
	require.NoError(t, err)
	require.Len(t, ev, 1)
	assert.Equal(t, "e2", ev[0].EventID, "the oldest goes")
	list, err := rej.List("i")
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.Equal(t, "e3", list[0].EventID)
	assert.Equal(t, "again", list[1].Reason)
	_, err = rej.Get("i", "e2")
	assert.ErrorIs(t, err, middleware.ErrNotFound)
	assert.ErrorIs(t, rej.Delete("i", "e2"), middleware.ErrNotFound)
	require.NoError(t, rej.Delete("i", "e1"))
	require.NoError(t, rej.Drop("i"))
	list, err = rej.List("i")
	require.NoError(t, err)
	assert.Empty(t, list)
}

// A delivery's writes carry its lease's token: once the lease is another's,
// they are refused.
func TestStore_delivery_writes_are_fenced(t *testing.T) {
	ctx := context.Background()
	s, j := open(t)
	token := int64(0)
	log, rej := s.Log(func(string) int64 { return token }), s.Rejected(func(string) int64 { return token })
	require.NoError(t, log.Append("i", middleware.LogEntry{Action: "no lease yet"}))

	var err error
	// Long enough for two writes on a loaded machine under the race
	// detector.
	const lease = 600 * time.Millisecond
	token, err = j.AcquireLease(ctx, "i", "me", lease)
	require.NoError(t, err)
	require.NoError(t, log.Append("i", middleware.LogEntry{Action: "held"}))
	_, err = rej.Put("i", middleware.RejectedEvent{EventID: "e1"})
	require.NoError(t, err)

	time.Sleep(lease + 50*time.Millisecond)
	_, err = j.AcquireLease(ctx, "i", "other", time.Minute)
	require.NoError(t, err)
	assert.ErrorIs(t, log.Append("i", middleware.LogEntry{Action: "fenced"}), pgstate.ErrFenced)
	_, err = rej.Put("i", middleware.RejectedEvent{EventID: "e2"})
	assert.ErrorIs(t, err, pgstate.ErrFenced)
	entries, err := log.Entries("i")
	require.NoError(t, err)
	assert.Len(t, entries, 2)
	list, err := rej.List("i")
	require.NoError(t, err)
	assert.Len(t, list, 1)
	require.NoError(t, s.Log(unfenced).Append("i", middleware.LogEntry{Action: "management"}),
		"what the management API logs is not fenced")
}

// A request is taken by the replica that holds the integration, once, and
// answered.
func TestStore_requests_between_replicas(t *testing.T) {
	ctx := context.Background()
	s, j := open(t)
	_, err := j.Heartbeat(ctx, "owner", time.Minute)
	require.NoError(t, err)
	id, err := s.Ask(ctx, "i", "replay", map[string]int{"n": 1})
	require.NoError(t, err)
	none, err := s.Take(ctx, "owner", []string{"other"})
	require.NoError(t, err)
	assert.Empty(t, none, "only the integrations it holds")
	reqs, err := s.Take(ctx, "owner", []string{"i"})
	require.NoError(t, err)
	require.Len(t, reqs, 1)
	assert.JSONEq(t, `{"n":1}`, string(reqs[0].Body))
	again, err := s.Take(ctx, "owner", []string{"i"})
	require.NoError(t, err)
	assert.Empty(t, again, "taken once")

	require.NoError(t, s.Answer(ctx, id, "yes"))
	var answer string
	require.NoError(t, s.Await(ctx, id, "answer", time.Millisecond, &answer))
	assert.Equal(t, "yes", answer)
}
