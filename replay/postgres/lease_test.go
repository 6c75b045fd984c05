package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/internal/pgtest"
	"github.com/sinkbus/sinkbus/replay"
	"github.com/sinkbus/sinkbus/replay/postgres"
)

// fencedPair opens two storages of one schema, as two processes, whose
// cursor saves are fenced by the lease lease names, with the token each
// holds in tokens.
func fencedPair(t *testing.T, lease func(group string) string) (a, b *postgres.Storage, tokens map[*postgres.Storage]int64) {
	schema := pgtest.Schema(t)
	a = open(t, postgres.Config{Schema: schema})
	b = open(t, postgres.Config{Schema: schema})
	tokens = map[*postgres.Storage]int64{}
	for _, s := range []*postgres.Storage{a, b} {
		s.SetFence(func(g string) (string, int64) { return lease(g), tokens[s] })
	}
	return a, b, tokens
}

// A process whose lease expired and was taken over saves no cursor: the
// new holder's stays, whatever the old one still holds in memory. The old
// one is told (replay.ErrFenced) once, and the other cursors it saves in
// the same call are saved.
func TestStorage_cursor_saves_are_fenced_by_the_lease(t *testing.T) {
	ctx := context.Background()
	a, b, tokens := fencedPair(t, func(g string) string { return g })
	k := replay.CursorKey{Topic: "t", Group: "g"}
	other := replay.CursorKey{Topic: "t", Group: "free"}

	ta, err := a.AcquireLease(ctx, "g", "a", 200*time.Millisecond)
	require.NoError(t, err)
	tokens[a] = ta
	require.NoError(t, a.SaveCursors(map[replay.CursorKey]replay.Cursor{k: {Next: 10}}))
	_, err = b.AcquireLease(ctx, "g", "b", time.Minute)
	require.ErrorIs(t, err, postgres.ErrLeaseHeld, "a holds it")

	time.Sleep(250 * time.Millisecond) // a is paused past its lease
	require.ErrorIs(t, a.SaveCursors(map[replay.CursorKey]replay.Cursor{k: {Next: 11}}), replay.ErrFenced,
		"an expired lease writes nothing, even before another takes it")
	tb, err := b.AcquireLease(ctx, "g", "b", time.Minute)
	require.NoError(t, err)
	assert.Greater(t, tb, ta, "every acquisition has a new token")
	tokens[b] = tb
	c, ok, err := b.LoadCursor(k)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, uint64(10), c.Next, "the new holder starts from the last cursor a saved under its lease")
	require.NoError(t, b.SaveCursors(map[replay.CursorKey]replay.Cursor{k: {Next: 20}}))

	err = a.SaveCursors(map[replay.CursorKey]replay.Cursor{k: {Next: 12}, other: {Next: 5}})
	require.ErrorIs(t, err, replay.ErrFenced)
	c, _, err = b.LoadCursor(k)
	require.NoError(t, err)
	assert.Equal(t, uint64(20), c.Next, "a moved nothing back")
	c, ok, err = b.LoadCursor(other)
	require.NoError(t, err)
	assert.True(t, ok && c.Next == 5, "a group without a lease is saved as before")

	held, err := a.RenewLeases(ctx, "a", []string{"g"}, time.Minute)
	require.NoError(t, err)
	assert.Empty(t, held, "a cannot renew a lease it lost")
	held, err = b.RenewLeases(ctx, "b", []string{"g"}, time.Minute)
	require.NoError(t, err)
	assert.Equal(t, map[string]int64{"g": tb}, held)
	require.NoError(t, b.ReleaseLease(ctx, "g", tb))
	ta2, err := a.AcquireLease(ctx, "g", "a", time.Minute)
	require.NoError(t, err, "a released lease is free at once")
	assert.Greater(t, ta2, tb)
}

// A group that works for another (a replay for its integration) is fenced
// by that one's lease: once another replica holds it, the old holder moves
// neither cursor.
func TestStorage_a_group_is_fenced_by_the_lease_it_names(t *testing.T) {
	ctx := context.Background()
	a, b, tokens := fencedPair(t, func(string) string { return "g" })
	k := replay.CursorKey{Topic: "t", Group: "g~replay-1"}

	ta, err := a.AcquireLease(ctx, "g", "a", time.Minute)
	require.NoError(t, err)
	tokens[a] = ta
	require.NoError(t, a.SaveCursors(map[replay.CursorKey]replay.Cursor{k: {Next: 10}}))
	require.NoError(t, a.ReleaseLease(ctx, "g", ta))
	tb, err := b.AcquireLease(ctx, "g", "b", time.Minute)
	require.NoError(t, err)
	tokens[b] = tb
	require.NoError(t, b.SaveCursors(map[replay.CursorKey]replay.Cursor{k: {Next: 20}}))

	require.ErrorIs(t, a.SaveCursors(map[replay.CursorKey]replay.Cursor{k: {Next: 11}}), replay.ErrFenced,
		"g's lease is b's: a's save of g~replay-1 is refused though that group has no lease of its own")
	c, _, err := b.LoadCursor(k)
	require.NoError(t, err)
	assert.Equal(t, uint64(20), c.Next)
}

// Members are alive until their heartbeat expires; one that leaves gives
// up its leases at once.
func TestStorage_heartbeat_and_leave(t *testing.T) {
	ctx := context.Background()
	s := open(t, postgres.Config{})
	m, err := s.Heartbeat(ctx, "b", time.Minute)
	require.NoError(t, err)
	assert.Equal(t, []string{"b"}, m)
	_, err = s.Heartbeat(ctx, "old", time.Millisecond)
	require.NoError(t, err)
	time.Sleep(5 * time.Millisecond)
	m, err = s.Heartbeat(ctx, "a", time.Minute)
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b"}, m, "old's heartbeat expired")

	_, err = s.AcquireLease(ctx, "g", "a", time.Minute)
	require.NoError(t, err)
	require.NoError(t, s.Leave(ctx, "a"))
	h, err := s.LeaseHolders(ctx)
	require.NoError(t, err)
	assert.Empty(t, h)
	m, err = s.Heartbeat(ctx, "b", time.Minute)
	require.NoError(t, err)
	assert.Equal(t, []string{"b"}, m)
}

// A journal opened before another process moved a group's cursor reads
// the cursor as saved now when it takes the group over.
func TestJournal_ReloadCursor_reads_what_another_process_saved(t *testing.T) {
	schema := pgtest.Schema(t)
	j1, err := replay.Open(replay.Config{Storage: open(t, postgres.Config{Schema: schema}), CompactEvery: -1})
	require.NoError(t, err)
	defer j1.Close()
	j2, err := replay.Open(replay.Config{Storage: open(t, postgres.Config{Schema: schema}), CompactEvery: -1})
	require.NoError(t, err)
	defer j2.Close()

	for _, id := range []string{"a", "b", "c"} {
		require.NoError(t, j1.Publish("t", message.NewMessage(id, nil)))
	}
	ctx, cancel := context.WithCancel(context.Background())
	msgs, err := j1.Consumer(replay.ConsumerConfig{Group: "g", FromOldest: true}).Subscribe(ctx, "t")
	require.NoError(t, err)
	for range 2 {
		receiveAck(t, msgs)
	}
	require.Eventually(t, func() bool { c, _ := j1.Cursor("t", "g"); return c.Next == 3 }, 5*time.Second, time.Millisecond)
	require.NoError(t, j1.Flush())
	cancel()

	_, ok := j2.Cursor("t", "g")
	assert.False(t, ok, "j2 read the cursors before g had one")
	require.NoError(t, j2.ReloadCursor("t", "g"))
	c, ok := j2.Cursor("t", "g")
	require.True(t, ok)
	assert.Equal(t, uint64(3), c.Next, "j2 starts where j1 left off")
	msgs2, err := j2.Consumer(replay.ConsumerConfig{Group: "g"}).Subscribe(context.Background(), "t")
	require.NoError(t, err)
	assert.Equal(t, "c", receiveAck(t, msgs2))
}
