package sinks_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/field"
	"github.com/sinkbus/sinkbus/sinks"
)

func TestClassify(t *testing.T) {
	status := func(code int, after time.Duration) error {
		return &sinks.StatusError{Destination: "https://example.com", StatusCode: code, RetryAfter: after}
	}
	cases := []struct {
		name  string
		err   error
		class sinks.Class
		after time.Duration
	}{
		{"nil", nil, sinks.ClassDelivered, 0},
		{"unknown error", errors.New("boom"), sinks.ClassRetryable, 0},
		{"deadline", context.DeadlineExceeded, sinks.ClassRetryable, 0},
		{"permanent", sinks.Permanent(errors.New("bad")), sinks.ClassPermanent, 0},
		{"wrapped permanent", fmt.Errorf("deliver: %w", sinks.Permanent(errors.New("bad"))), sinks.ClassPermanent, 0},
		{"retry after", sinks.RetryAfter(errors.New("slow down"), time.Second), sinks.ClassRetryable, time.Second},
		{"negative retry after", sinks.RetryAfter(errors.New("slow down"), -time.Second), sinks.ClassRetryable, 0},
		{"204", status(204, 0), sinks.ClassDelivered, 0},
		{"408", status(408, 0), sinks.ClassRetryable, 0},
		{"429 with Retry-After", status(429, 3*time.Second), sinks.ClassRetryable, 3 * time.Second},
		{"503", status(503, 0), sinks.ClassRetryable, 0},
		{"301", status(301, 0), sinks.ClassPermanent, 0},
		{"400", status(400, 0), sinks.ClassPermanent, 0},
		{"410 ignores Retry-After", status(410, time.Minute), sinks.ClassPermanent, 0},
		{"longer of two waits", sinks.RetryAfter(status(503, 2*time.Second), 5*time.Second), sinks.ClassRetryable, 5 * time.Second},
		{"permanent wins over a wait", sinks.Permanent(sinks.RetryAfter(errors.New("x"), time.Second)), sinks.ClassPermanent, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			class, after := sinks.Classify(c.err)
			assert.Equal(t, c.class, class)
			assert.Equal(t, c.after, after)
		})
	}
	assert.Nil(t, sinks.Permanent(nil))
	assert.Nil(t, sinks.RetryAfter(nil, time.Second))
}

func TestStatusError_text_names_destination_reason_and_body(t *testing.T) {
	err := &sinks.StatusError{Destination: "https://erp.example.com/hooks", StatusCode: 429, Body: `{"error":"slow"}`}
	assert.Equal(t, `Request to URL https://erp.example.com/hooks failed. Reason: too many requests (HTTP status code 429). Response: {"error":"slow"}`, err.Error())
	assert.Contains(t, (&sinks.StatusError{Destination: "d", StatusCode: 599}).Error(), "unexpected status (HTTP status code 599)")
}

type timeoutErr struct{}

func (timeoutErr) Error() string { return "i/o timeout" }
func (timeoutErr) Timeout() bool { return true }

func TestIsTimeout(t *testing.T) {
	assert.True(t, sinks.IsTimeout(fmt.Errorf("post: %w", context.DeadlineExceeded)))
	assert.True(t, sinks.IsTimeout(&net.OpError{Op: "read", Err: timeoutErr{}}))
	assert.False(t, sinks.IsTimeout(context.Canceled))
	assert.False(t, sinks.IsTimeout(errors.New("refused")))
}

func TestDuration_reads_strings_and_seconds(t *testing.T) {
	for in, want := range map[string]time.Duration{`"1m30s"`: 90 * time.Second, `30`: 30 * time.Second, `0.5`: 500 * time.Millisecond, `null`: 0} {
		var d sinks.Duration
		require.NoError(t, json.Unmarshal([]byte(in), &d), in)
		assert.Equal(t, want, d.D(), in)
	}
	for _, in := range []string{`"soon"`, `true`, `[1]`, `{"s":1}`} {
		var d sinks.Duration
		assert.EqualError(t, json.Unmarshal([]byte(in), &d), `must be a duration such as "30s"`, in)
	}
	out, err := json.Marshal(sinks.Duration(90 * time.Second))
	require.NoError(t, err)
	assert.Equal(t, `"1m30s"`, string(out))
}

func TestRegistry(t *testing.T) {
	decode := func(json.RawMessage) (sinks.Config, error) { return nil, nil }
	r := sinks.NewRegistry(sinks.Type{Name: "webhook", Decode: decode})
	assert.Error(t, r.Register(sinks.Type{Name: "webhook", Decode: decode}), "twice")
	assert.Error(t, r.Register(sinks.Type{Name: "Bad-Name", Decode: decode}))
	assert.Error(t, r.Register(sinks.Type{Name: "nodecode"}))
	require.NoError(t, r.Register(sinks.Type{Name: "erp_push", Decode: decode}))
	assert.Equal(t, []string{"erp_push", "webhook"}, r.Names())
	assert.True(t, r.Has("erp_push"))
	_, err := r.Decode("kafka", nil)
	assert.ErrorIs(t, err, sinks.ErrUnknownType)
	assert.Panics(t, func() { sinks.NewRegistry(sinks.Type{Name: ""}) })
}

func TestMask_keeps_four_characters_of_long_secrets_only(t *testing.T) {
	assert.Equal(t, "", sinks.Mask(""))
	assert.Equal(t, "****", sinks.Mask("short-secre"), "too short to show any of it")
	assert.Equal(t, "****cret", sinks.Mask("twelve-secret"))
	assert.Equal(t, "****PSYQ", sinks.Mask("sk_live_51HqPSYQ"))
	assert.True(t, sinks.IsMasked(sinks.Mask("sk_live_51HqPSYQ")))
	assert.False(t, sinks.IsMasked("sk_live_51HqPSYQ"))
}

func message1(payload string, md map[string]string) *message.Message {
	msg := message.NewMessage("01HZX", []byte(payload))
	for k, v := range md {
		msg.Metadata.Set(k, v)
	}
	return msg
}

func TestAppendEnvelope_is_the_envelope_encoding_json_reads(t *testing.T) {
	msg := message1(`{"order_id":"o-1","total":12.5}`, map[string]string{
		sinks.MetaName: "order.created", sinks.MetaTenant: "acme", sinks.MetaPublishedAt: "2026-11-22T10:00:00.5Z",
		sinks.MetaAttempt: "2", "source": "pos <7>", "z": "\u2028",
	})
	body := sinks.AppendEnvelope(nil, msg)
	require.True(t, json.Valid(body), string(body))
	env, err := sinks.EnvelopeOf(msg)
	require.NoError(t, err)
	assert.Equal(t, "01HZX", env.ID)
	assert.Equal(t, "order.created", env.Name)
	assert.Equal(t, "acme", env.Tenant)
	assert.Equal(t, time.Date(2026, 11, 22, 10, 0, 0, 5e8, time.UTC), env.PublishedAt)
	assert.JSONEq(t, `{"order_id":"o-1","total":12.5}`, string(env.Payload))
	assert.Equal(t, map[string]string{"source": "pos <7>", "z": "\u2028"}, env.Metadata, "user metadata only")

	// A foreign message's payload that is not JSON travels as a string.
	env, err = sinks.EnvelopeOf(message1("not json", nil))
	require.NoError(t, err)
	assert.Equal(t, `"not json"`, string(env.Payload))
	env, err = sinks.EnvelopeOf(message1("", nil))
	require.NoError(t, err)
	assert.Equal(t, "null", string(env.Payload))
}

// FuzzAppendJSONString checks the hand-written string encoder against
// encoding/json on any input: outside data (names, tenants, metadata) goes
// through it into every body.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", `quote " and \ backslash`, "<tag>&", "\x00\x1f\x7f", "\u2028\u2029", "caf\xe9", "日本語", "\xf0\x28\x8c\x28"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := sinks.AppendJSONString([]byte("x"), s)
		require.Equal(t, byte('x'), got[0], "appends")
		want, err := json.Marshal(s)
		require.NoError(t, err)
		assert.Equal(t, string(want), string(got[1:]))
		var back string
		require.NoError(t, json.Unmarshal(got[1:], &back))
		if utf8.ValidString(s) {
			assert.Equal(t, s, back)
		}
	})
}

// FuzzAppendEnvelope: whatever a message carries, its envelope is valid JSON
// that reads back to the same fields.
func FuzzAppendEnvelope(f *testing.F) {
	f.Add("01HZX", "order.created", "acme", `{"a":1}`, "k", "v", false)
	f.Add("", "", "", "not json", "", "", true)
	f.Add("id\"", "n\\", "t\u2028", `[1,2]`, "sinkbus_name", "x", true)
	f.Fuzz(func(t *testing.T, id, name, tenant, payload, key, value string, replayed bool) {
		if name != "" && !json.Valid([]byte(payload)) {
			return // the bus only hands sinks named events with JSON payloads
		}
		msg := message.NewMessage(id, []byte(payload))
		if name != "" {
			msg.Metadata.Set(sinks.MetaName, name)
		}
		if tenant != "" {
			msg.Metadata.Set(sinks.MetaTenant, tenant)
		}
		if key != "" {
			msg.Metadata.Set(key, value)
		}
		if replayed {
			msg.Metadata.Set(sinks.MetaReplayed, "true")
		}
		body := sinks.AppendEnvelope(nil, msg)
		require.True(t, json.Valid(body), "%q", body)
		var env map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(body, &env))
		var gotID string
		require.NoError(t, json.Unmarshal(env["id"], &gotID))
		if utf8.ValidString(id) {
			assert.Equal(t, id, gotID)
		}
		_, marked := env["replayed"]
		assert.Equal(t, sinks.IsReplayed(msg), marked)
	})
}

// A duration out of range is named as such, by its member, through
// field.DecodeStrict: not as the negative one a float would convert to.
func TestDuration_out_of_range_is_named(t *testing.T) {
	var v struct {
		D sinks.Duration `json:"d"`
	}
	for body, want := range map[string]string{
		`{"d":"forever"}`: `d: must be a duration such as "30s"`,
		`{"d":1e308}`:     "d: is out of range: a duration is at most 292 years",
		`{"d":-1e300}`:    "d: is out of range: a duration is at most 292 years",
	} {
		err := field.DecodeStrict([]byte(body), &v)
		require.Error(t, err, body)
		assert.Equal(t, want, err.Error(), body)
	}
	var d sinks.Duration
	require.NoError(t, d.UnmarshalJSON([]byte(`1.5`)))
	assert.Equal(t, 1500*time.Millisecond, d.D())
}
