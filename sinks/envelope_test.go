package sinks_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/sinks"
)

func busMessage(md map[string]string) *message.Message {
	msg := message1(`{"order_id":"o-1"}`, map[string]string{
		sinks.MetaName: "order.fulfilled", sinks.MetaTenant: "acme", sinks.MetaPublishedAt: "2026-11-22T10:00:00Z",
		sinks.MetaAttempt: "1",
	})
	for k, v := range md {
		msg.Metadata.Set(k, v)
	}
	return msg
}

func TestAppendEnvelope_marks_replayed_deliveries_only(t *testing.T) {
	cases := []struct {
		name     string
		replayed string
		want     bool
	}{
		{"live", "", false},
		{"replayed", "true", true},
		{"anything else is live", "false", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			md := map[string]string{"source": "pos"}
			if tc.replayed != "" {
				md[sinks.MetaReplayed] = tc.replayed
			}
			msg := busMessage(md)
			assert.Equal(t, tc.want, sinks.IsReplayed(msg))

			body := sinks.AppendEnvelope(nil, msg)
			require.True(t, json.Valid(body), string(body))
			var fields map[string]json.RawMessage
			require.NoError(t, json.Unmarshal(body, &fields))
			raw, present := fields["replayed"]
			assert.Equal(t, tc.want, present, "the key appears on replayed deliveries only: %s", body)
			if tc.want {
				assert.Equal(t, "true", string(raw))
			}
			assert.JSONEq(t, `{"source":"pos"}`, string(fields["metadata"]), "sinkbus_ keys stay out of metadata")

			env, err := sinks.EnvelopeOf(msg)
			require.NoError(t, err)
			assert.Equal(t, tc.want, env.Replayed)
		})
	}
}

// The envelope is the same document encoding/json makes of Envelope, so a
// receiver decoding into its own struct reads what the encoder wrote.
func TestAppendEnvelope_matches_encoding_json_of_Envelope(t *testing.T) {
	many := map[string]string{}
	for i := range 20 { // more keys than the encoder sorts on the stack
		many[fmt.Sprintf("k%02d", 19-i)] = fmt.Sprint(i)
	}
	for _, md := range []map[string]string{
		{"source": "pos"},
		{"source": "pos", sinks.MetaReplayed: "true"},
		many,
	} {
		msg := busMessage(md)
		env, err := sinks.EnvelopeOf(msg)
		require.NoError(t, err)
		want, err := json.Marshal(env)
		require.NoError(t, err)
		assert.Equal(t, string(want), string(sinks.AppendEnvelope(nil, msg)))
	}
}

// The encoder runs once per delivery on every sink: into a buffer that is
// large enough it allocates nothing, replayed or not.
func TestAppendEnvelope_allocates_nothing_into_a_large_enough_buffer(t *testing.T) {
	cases := map[string]map[string]string{
		"live":                        nil,
		"replayed":                    {sinks.MetaReplayed: "true"},
		"replayed with user metadata": {sinks.MetaReplayed: "true", "source": "pos", "channel": "web", "store": "berlin", "device": "kiosk-7"},
	}
	for name, md := range cases {
		t.Run(name, func(t *testing.T) {
			msg := busMessage(md)
			buf := make([]byte, 0, 1024)
			allocs := testing.AllocsPerRun(100, func() {
				buf = sinks.AppendEnvelope(buf[:0], msg)
			})
			assert.Zero(t, allocs)
			assert.True(t, json.Valid(buf), string(buf))
		})
	}
}

func BenchmarkAppendEnvelope(b *testing.B) {
	for name, md := range map[string]map[string]string{
		"live":     nil,
		"replayed": {sinks.MetaReplayed: "true", "source": "pos"},
	} {
		b.Run(name, func(b *testing.B) {
			msg := busMessage(md)
			buf := make([]byte, 0, 1024)
			b.ReportAllocs()
			for b.Loop() {
				buf = sinks.AppendEnvelope(buf[:0], msg)
			}
		})
	}
}
