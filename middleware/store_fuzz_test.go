package middleware_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/middleware"
)

// jsonRoundTrip is v as its JSON form reads back: what a reopened store
// can give (encoding/json writes invalid UTF-8 as U+FFFD).
func jsonRoundTrip[T any](t *testing.T, v T) T {
	t.Helper()
	data, err := json.Marshal(v)
	require.NoError(t, err)
	var out T
	require.NoError(t, json.Unmarshal(data, &out))
	return out
}

// FuzzFileRejected_reopens: whatever event the store is given (any
// strings, any payload the bus publishes, metadata), the file it writes
// reads back, with the same events, after a restart: no content it writes
// can keep the bus from starting. Any other document in its directory is
// set aside, never a failure or a panic.
func FuzzFileRejected_reopens(f *testing.F) {
	f.Add("e1", "order.created", "acme", "Request failed: 400", []byte(`{"a":[1,{"b":null}]}`), "k", "v", []byte(`{`))
	f.Add("e\xff", "\x00", "", "\u2028 \"quoted\" \\", []byte(`not json`), "", "\xfe", []byte(`{"integration_id":1}`))
	f.Add("deep", "a.b", "t", "", []byte(deepJSON(bus.MaxPayloadDepth)), "x", "y", []byte(`{"rejected_events":[{"payload":`+deepJSON(9998)+`}]}`))
	f.Fuzz(func(t *testing.T, id, name, tenant, reason string, payload []byte, key, value string, other []byte) {
		dir := t.TempDir()
		s, err := middleware.OpenFileRejected(dir, 5)
		require.NoError(t, err)
		e := middleware.RejectedEvent{EventID: id, Name: name, Tenant: tenant, Reason: reason,
			Metadata: map[string]string{key: value}, PublishedAt: t0, CreatedAt: t0.Add(time.Second), Attempts: 3}
		// The payload as the bus keeps it: its JSON when valid within the
		// deepest the bus ever publishes, else the bytes as a JSON string.
		if json.Valid(payload) && depth(payload) <= bus.MaxPayloadDepth {
			e.Payload = payload
		} else {
			e.Payload, _ = json.Marshal(string(payload))
		}
		_, err = s.Put("erp", e)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "other.rejected.json"), other, 0o600))

		again, err := middleware.OpenFileRejected(dir, 5)
		require.NoError(t, err)
		for _, u := range again.Unreadable() {
			assert.Contains(t, u.Error(), "other.rejected.json", "the store's own file was set aside")
		}
		got, err := again.List("erp")
		require.NoError(t, err)
		require.Len(t, got, 1)
		want := jsonRoundTrip(t, e)
		assert.Equal(t, want.EventID, got[0].EventID)
		assert.Equal(t, want.Reason, got[0].Reason)
		assert.JSONEq(t, string(want.Payload), string(got[0].Payload))
	})
}

// FuzzFileLog_reopens: the same for the integration log.
func FuzzFileLog_reopens(f *testing.F) {
	f.Add("retry_triggered", "Request failed: 503", "e1", []byte(`{"integration_id":"x","entries":[]}`))
	f.Add("\xff", "\x00\u2028", "", []byte(`[`+deepJSON(9999)+`]`))
	f.Fuzz(func(t *testing.T, action, reason, eventID string, other []byte) {
		dir := t.TempDir()
		l, err := middleware.OpenFileLog(dir, 5)
		require.NoError(t, err)
		e := middleware.LogEntry{Action: action, Reason: reason, EventID: eventID, CreatedAt: t0}
		require.NoError(t, l.Append("erp", e))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "other.log.json"), other, 0o600))

		again, err := middleware.OpenFileLog(dir, 5)
		require.NoError(t, err)
		for _, u := range again.Unreadable() {
			assert.Contains(t, u.Error(), "other.log.json", "the log's own file was set aside")
		}
		got, err := again.Entries("erp")
		require.NoError(t, err)
		require.Len(t, got, 1)
		assert.Equal(t, jsonRoundTrip(t, e), got[0])
	})
}

// deepJSON is n arrays nested.
func deepJSON(n int) string {
	b := make([]byte, 0, 2*n+1)
	for range n {
		b = append(b, '[')
	}
	b = append(b, '1')
	for range n {
		b = append(b, ']')
	}
	return string(b)
}

// depth is how deep data's arrays and objects nest; data is valid JSON.
func depth(data []byte) int {
	d, deepest, inString, escaped := 0, 0, false, false
	for _, c := range data {
		switch {
		case escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case inString:
		case c == '[' || c == '{':
			d++
			deepest = max(deepest, d)
		case c == ']' || c == '}':
			d--
		}
	}
	return deepest
}
