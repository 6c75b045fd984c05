package middleware_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/sinks"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func rejectedEvent(id string) middleware.RejectedEvent {
	return middleware.RejectedEvent{
		EventID: id, Name: "order.fulfilled", Tenant: "acme", PublishedAt: t0,
		Payload: json.RawMessage(`{"id":"` + id + `"}`), Reason: "bad request", StatusCode: 400, Attempts: 1, CreatedAt: t0,
	}
}

func ids(l []middleware.RejectedEvent) []string {
	out := make([]string, len(l))
	for i, e := range l {
		out[i] = e.EventID
	}
	return out
}

func rejectedStores(t *testing.T, size int) map[string]func() middleware.RejectedStore {
	dir := t.TempDir()
	return map[string]func() middleware.RejectedStore{
		"memory": func() middleware.RejectedStore { return middleware.NewMemoryRejected(size) },
		"file": func() middleware.RejectedStore {
			s, err := middleware.OpenFileRejected(dir, size)
			require.NoError(t, err)
			return s
		},
	}
}

func TestRejectedStore(t *testing.T) {
	for name, open := range rejectedStores(t, 3) {
		t.Run(name, func(t *testing.T) {
			s := open()
			for _, id := range []string{"e1", "e2", "e3"} {
				evicted, err := s.Put(testID, rejectedEvent(id))
				require.NoError(t, err)
				assert.Empty(t, evicted)
			}
			_, err := s.Put("other", rejectedEvent("x1"))
			require.NoError(t, err)

			evicted, err := s.Put(testID, rejectedEvent("e4"))
			require.NoError(t, err)
			assert.Equal(t, []string{"e1"}, ids(evicted), "full: the oldest goes")

			again := rejectedEvent("e3")
			again.Reason, again.Attempts = "retried: bad request", 2
			evicted, err = s.Put(testID, again)
			require.NoError(t, err)
			assert.Empty(t, evicted, "the same event replaces its entry")

			list, err := s.List(testID)
			require.NoError(t, err)
			assert.Equal(t, []string{"e3", "e4", "e2"}, ids(list), "newest first")

			got, err := s.Get(testID, "e3")
			require.NoError(t, err)
			assert.Equal(t, again, got)
			_, err = s.Get(testID, "e1")
			require.ErrorIs(t, err, middleware.ErrNotFound)
			_, err = s.Get("nobody", "e3")
			require.ErrorIs(t, err, middleware.ErrNotFound)

			require.NoError(t, s.Delete(testID, "e4"))
			require.ErrorIs(t, s.Delete(testID, "e4"), middleware.ErrNotFound)
			list, err = s.List(testID)
			require.NoError(t, err)
			assert.Equal(t, []string{"e3", "e2"}, ids(list))

			require.NoError(t, s.Drop(testID))
			list, err = s.List(testID)
			require.NoError(t, err)
			assert.Empty(t, list)
			list, err = s.List("other")
			require.NoError(t, err)
			assert.Equal(t, []string{"x1"}, ids(list), "other integrations keep theirs")
		})
	}
}

func TestFileRejected_survives_reopen(t *testing.T) {
	dir := t.TempDir()
	s, err := middleware.OpenFileRejected(dir, 0)
	require.NoError(t, err)
	id := "Weird/../ID é"
	for _, e := range []string{"e1", "e2", "e3"} {
		_, err := s.Put(id, rejectedEvent(e))
		require.NoError(t, err)
	}
	require.NoError(t, s.Delete(id, "e2"))
	_, err = s.Put("gone", rejectedEvent("g1"))
	require.NoError(t, err)
	require.NoError(t, s.Drop("gone"))
	want, err := s.List(id)
	require.NoError(t, err)

	again, err := middleware.OpenFileRejected(dir, 0)
	require.NoError(t, err)
	got, err := again.List(id)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	assert.Equal(t, []string{"e3", "e1"}, ids(got))
	gone, err := again.List("gone")
	require.NoError(t, err)
	assert.Empty(t, gone)
	files, err := filepath.Glob(filepath.Join(dir, "*"))
	require.NoError(t, err)
	assert.Len(t, files, 1, "one file, inside dir, and no temporary left: %v", files)
}

func TestFileRejected_smaller_size_evicts_on_next_put(t *testing.T) {
	dir := t.TempDir()
	s, err := middleware.OpenFileRejected(dir, 5)
	require.NoError(t, err)
	for i := 1; i <= 5; i++ {
		_, err := s.Put(testID, rejectedEvent(fmt.Sprintf("e%d", i)))
		require.NoError(t, err)
	}

	small, err := middleware.OpenFileRejected(dir, 2)
	require.NoError(t, err)
	list, err := small.List(testID)
	require.NoError(t, err)
	assert.Len(t, list, 5, "nothing dropped silently at open")
	evicted, err := small.Put(testID, rejectedEvent("e6"))
	require.NoError(t, err)
	assert.Equal(t, []string{"e1", "e2", "e3", "e4"}, ids(evicted))
}

// A file that cannot be decoded does not keep the store from opening: it
// is set aside, whole, for inspection, named in Unreadable, and the other
// integrations' files load.
func TestFileStores_set_aside_a_corrupt_file(t *testing.T) {
	dir := t.TempDir()
	good, err := middleware.OpenFileRejected(dir, 0)
	require.NoError(t, err)
	_, err = good.Put("good", rejectedEvent("e1"))
	require.NoError(t, err)
	goodLog, err := middleware.OpenFileLog(dir, 0)
	require.NoError(t, err)
	require.NoError(t, goodLog.Append("good", middleware.LogEntry{Action: "a", CreatedAt: t0}))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "x.rejected.json"), []byte("{"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "x.log.json"), []byte("{"), 0o600))

	rejected, err := middleware.OpenFileRejected(dir, 0)
	require.NoError(t, err)
	require.Len(t, rejected.Unreadable(), 1)
	assert.ErrorContains(t, rejected.Unreadable()[0], "x.rejected.json")
	list, err := rejected.List("good")
	require.NoError(t, err)
	assert.Equal(t, []string{"e1"}, ids(list))

	log, err := middleware.OpenFileLog(dir, 0)
	require.NoError(t, err)
	require.Len(t, log.Unreadable(), 1)
	assert.ErrorContains(t, log.Unreadable()[0], "x.log.json")
	entries, err := log.Entries("good")
	require.NoError(t, err)
	assert.Len(t, entries, 1)

	for _, name := range []string{"x.rejected.json", "x.log.json"} {
		assert.NoFileExists(t, filepath.Join(dir, name))
		kept, err := os.ReadFile(filepath.Join(dir, name+middleware.UnreadableSuffix))
		require.NoError(t, err)
		assert.Equal(t, "{", string(kept))
	}
	again, err := middleware.OpenFileRejected(dir, 0)
	require.NoError(t, err)
	assert.Empty(t, again.Unreadable(), "set aside once")
}

func TestFileStores_ignore_leftover_temporary_files(t *testing.T) {
	dir := t.TempDir()
	leftover := filepath.Join(dir, ".tmp-123.rejected.json")
	require.NoError(t, os.WriteFile(leftover, []byte("{"), 0o600))
	_, err := middleware.OpenFileRejected(dir, 0)
	require.NoError(t, err)
	assert.NoFileExists(t, leftover)
}

func TestRejectedEvent_message_round_trip(t *testing.T) {
	msg := event("e1")
	msg.Metadata.Set(sinks.MetaAttempt, "3")

	r := middleware.RejectedFromMessage(msg)
	back := r.Message()

	assert.Equal(t, "e1", back.UUID)
	assert.Equal(t, `{"order_id":"e1"}`, string(back.Payload))
	assert.Equal(t, "order.fulfilled", back.Metadata.Get(sinks.MetaName))
	assert.Equal(t, "acme", back.Metadata.Get(sinks.MetaTenant))
	assert.Equal(t, "2026-01-01T00:00:00Z", back.Metadata.Get(sinks.MetaPublishedAt))
	assert.Equal(t, "shop", back.Metadata.Get("source"))
	assert.Equal(t, "true", back.Metadata.Get(sinks.MetaReplayed))
	assert.Empty(t, back.Metadata.Get(sinks.MetaAttempt), "a new delivery counts its own attempts")
	assert.Equal(t, r, middleware.RejectedFromMessage(back))

	// The envelope a sink sends for the retried event is the original one,
	// marked as a second delivery.
	want, err := sinks.EnvelopeOf(msg)
	require.NoError(t, err)
	want.Replayed = true
	got, err := sinks.EnvelopeOf(back)
	require.NoError(t, err)
	assert.Equal(t, want, got)
}

func TestRejectedEvent_json(t *testing.T) {
	b, err := json.Marshal(rejectedEvent("e1"))
	require.NoError(t, err)
	assert.JSONEq(t, `{"id":"e1","name":"order.fulfilled","tenant":"acme","published_at":"2026-01-01T00:00:00Z",
		"payload":{"id":"e1"},"reason":"bad request","status_code":400,"attempts":1,"created_at":"2026-01-01T00:00:00Z"}`, string(b))
}

// A message that did not come through the bus (no sinks.MetaName) may hold
// anything.
func TestRejectedFromMessage_non_json_payload(t *testing.T) {
	msg := event("e1")
	msg.Metadata.Set(sinks.MetaName, "")
	msg.Payload = []byte("plain <text>")
	r := middleware.RejectedFromMessage(msg)
	assert.True(t, json.Valid(r.Payload))
	_, err := json.Marshal(r)
	require.NoError(t, err)
}

func logStores(t *testing.T, size int) map[string]func() middleware.LogStore {
	dir := t.TempDir()
	return map[string]func() middleware.LogStore{
		"memory": func() middleware.LogStore { return middleware.NewMemoryLog(size) },
		"file": func() middleware.LogStore {
			l, err := middleware.OpenFileLog(dir, size)
			require.NoError(t, err)
			return l
		},
	}
}

func TestLogStore_ring(t *testing.T) {
	for name, open := range logStores(t, 3) {
		t.Run(name, func(t *testing.T) {
			l := open()
			for i := 1; i <= 5; i++ {
				require.NoError(t, l.Append(testID, middleware.LogEntry{
					Action: middleware.ActionRetryTriggered, Reason: fmt.Sprint(i), CreatedAt: t0.Add(time.Duration(i) * time.Minute),
				}))
			}
			require.NoError(t, l.Append("other", middleware.LogEntry{Action: middleware.ActionIntegrationStarted}))

			got, err := l.Entries(testID)
			require.NoError(t, err)
			require.Len(t, got, 3, "bounded")
			assert.Equal(t, []string{"5", "4", "3"}, []string{got[0].Reason, got[1].Reason, got[2].Reason}, "newest first")

			require.NoError(t, l.Drop(testID))
			got, err = l.Entries(testID)
			require.NoError(t, err)
			assert.Empty(t, got)
			got, err = l.Entries("other")
			require.NoError(t, err)
			assert.Len(t, got, 1)
		})
	}
}

func TestMemoryLog_default_size(t *testing.T) {
	l := middleware.NewMemoryLog(0)
	for range 60 {
		require.NoError(t, l.Append(testID, middleware.LogEntry{Action: middleware.ActionRetryTriggered}))
	}
	got, err := l.Entries(testID)
	require.NoError(t, err)
	assert.Len(t, got, 50, "NewStore keeps the last 50 entries")
}

func TestFileLog_survives_reopen(t *testing.T) {
	dir := t.TempDir()
	l, err := middleware.OpenFileLog(dir, 0)
	require.NoError(t, err)
	want := []middleware.LogEntry{
		{Action: middleware.ActionRetryTriggered, Reason: "429", EventID: "e1", CreatedAt: t0.Add(time.Minute)},
		{Action: middleware.ActionIntegrationStarted, Reason: "Started via API.", CreatedAt: t0},
	}
	require.NoError(t, l.Append(testID, want[1]))
	require.NoError(t, l.Append(testID, want[0]))

	again, err := middleware.OpenFileLog(dir, 0)
	require.NoError(t, err)
	got, err := again.Entries(testID)
	require.NoError(t, err)
	assert.Equal(t, want, got)

	b, err := json.Marshal(got[1])
	require.NoError(t, err)
	assert.JSONEq(t, `{"action":"integration_started","reason":"Started via API.","created_at":"2026-01-01T00:00:00Z"}`, string(b))
}
