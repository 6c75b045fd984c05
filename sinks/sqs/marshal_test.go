package sqs_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	wsqs "github.com/ThreeDotsLabs/watermill-aws/sqs"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/sqs"
)

func attributeNames(m *types.Message) []string {
	var names []string
	for k := range m.MessageAttributes {
		names = append(names, k)
	}
	return names
}

func TestMarshaler_attributes(t *testing.T) {
	fixed := []string{sqs.AttrID, sqs.AttrName, sqs.AttrTenant, sqs.AttrReplayed}
	tests := []struct {
		name   string
		meta   map[string]string
		folded bool
	}{
		{"none", nil, false},
		{"six keys fit beside the four fixed ones", keys(6), false},
		{"seven keys do not", keys(7), true},
		{"twenty keys", keys(20), true},
		{"a name SQS refuses", map[string]string{"AWS.trace": "x"}, true},
		{"a name with a space", map[string]string{"my key": "x"}, true},
		{"an empty value", map[string]string{"k": ""}, true},
		{"a control character", map[string]string{"k": "a\x01b"}, true},
		{"invalid UTF-8", map[string]string{"k": "a\xffb"}, true},
		{"a noncharacter", map[string]string{"k": "a\uffffb"}, true},
		{"a replacement character is fine", map[string]string{"k": "a\ufffdb"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := event("order.created", "acme", `{"id":1}`)
			msg.Metadata.Set(sinks.MetaReplayed, "true")
			for k, v := range tt.meta {
				msg.Metadata.Set(k, v)
			}
			m, err := sqs.Marshaler{}.Marshal(msg)
			require.NoError(t, err)
			assert.LessOrEqual(t, len(m.MessageAttributes), sqs.MaxAttributes)
			for _, k := range fixed {
				assert.Contains(t, m.MessageAttributes, k)
			}
			assert.NotContains(t, m.MessageAttributes, sinks.MetaAttempt)
			assert.NotContains(t, m.MessageAttributes, sinks.MetaPublishedAt)
			if !tt.folded {
				assert.ElementsMatch(t, append(fixed, mapKeys(tt.meta)...), attributeNames(m))
				return
			}
			assert.ElementsMatch(t, append(fixed, sqs.AttrMetadata), attributeNames(m))
			var got map[string]string
			require.NoError(t, json.Unmarshal([]byte(*m.MessageAttributes[sqs.AttrMetadata].StringValue), &got))
			want := map[string]string{}
			for k, v := range tt.meta {
				want[k] = strings.ToValidUTF8(v, "\uFFFD") // as JSON has it
			}
			assert.Equal(t, want, got)
		})
	}
}

func TestMarshaler_body_is_the_envelope(t *testing.T) {
	msg := event("order.created", "acme", `{"id":1}`)
	msg.Metadata.Set("source", "pos")
	m, err := sqs.Marshaler{}.Marshal(msg)
	require.NoError(t, err)
	assert.Equal(t, string(sinks.AppendEnvelope(nil, msg)), *m.Body)
}

func TestUnmarshaler_reads_back_what_the_marshaler_wrote(t *testing.T) {
	msg := event("order.created", "acme", `{"id":1,"lines":[{"sku":"a"}]}`)
	msg.Metadata.Set(sinks.MetaReplayed, "true")
	for k, v := range keys(12) {
		msg.Metadata.Set(k, v)
	}
	m, err := sqs.Marshaler{}.Marshal(msg)
	require.NoError(t, err)

	got, err := sqs.Unmarshaler{}.Unmarshal(m)
	require.NoError(t, err)
	assert.Equal(t, msg.UUID, got.UUID)
	assert.JSONEq(t, string(msg.Payload), string(got.Payload))
	want := message.Metadata{}
	for k, v := range msg.Metadata {
		if k != sinks.MetaAttempt { // not part of the event
			want[k] = v
		}
	}
	assert.Equal(t, want, got.Metadata)
}

func TestUnmarshaler_reads_other_messages_as_watermill_aws_does(t *testing.T) {
	foreign, err := wsqs.DefaultMarshalerUnmarshaler{}.Marshal(message.NewMessage("id-1", []byte("plain text")))
	require.NoError(t, err)
	got, err := sqs.Unmarshaler{}.Unmarshal(foreign)
	require.NoError(t, err)
	assert.Equal(t, "id-1", got.UUID)
	assert.Equal(t, "plain text", string(got.Payload))
}

func keys(n int) map[string]string {
	m := map[string]string{}
	for i := range n {
		m[fmt.Sprintf("key_%02d", i)] = fmt.Sprintf("value %d", i)
	}
	return m
}

func mapKeys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
