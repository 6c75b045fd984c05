package sqs_test

import (
	"encoding/json"
	"strings"
	"testing"

	wsqs "github.com/ThreeDotsLabs/watermill-aws/sqs"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/filter"
	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/sqs"
)

// FuzzUnmarshal feeds the Unmarshaler what a queue may hold: any body, and
// an attribute of any type under any name (watermill-aws's UUID one too).
func FuzzUnmarshal(f *testing.F) {
	wide := event("order.created", "acme", `{"id":1,"lines":[{"sku":"a"}]}`)
	wide.Metadata.Set(sinks.MetaReplayed, "true")
	for k, v := range keys(12) {
		wide.Metadata.Set(k, v)
	}
	for _, msg := range []*message.Message{wide, event("cart.updated", "", ``), event("a.b", "t", `"text"`)} {
		m, err := sqs.Marshaler{}.Marshal(msg)
		require.NoError(f, err)
		f.Add(*m.Body, sqs.AttrReplayed, wsqs.AWSStringDataType, "true", []byte(nil), true)
	}
	f.Add(`plain text`, wsqs.UUIDAttribute, wsqs.AWSBinaryDataType, "", []byte("id"), false)
	f.Add(`{"id":"x","payload":null,"metadata":{"k":1}}`, "k", wsqs.AWSNumberDataType, "1", []byte(nil), true)
	f.Add(`{"id":"","name":"a.b"}`, "", "", "", []byte(nil), false)
	f.Add(`{"id":"x","published_at":"0001-01-01T00:00:00Z","payload":{}}`, sqs.AttrReplayed, wsqs.AWSStringDataType, "", []byte(nil), false)
	f.Fuzz(func(t *testing.T, body, name, dataType, value string, binary []byte, hasValue bool) {
		m := &types.Message{Body: aws.String(body), MessageId: aws.String("mid-1")}
		if name != "" {
			a := types.MessageAttributeValue{BinaryValue: binary}
			if dataType != "" {
				a.DataType = aws.String(dataType)
			}
			if hasValue {
				a.StringValue = aws.String(value)
			}
			m.MessageAttributes = map[string]types.MessageAttributeValue{name: a}
		}
		got, err := sqs.Unmarshaler{}.Unmarshal(m)
		require.NoError(t, err)
		require.NotNil(t, got)

		var env struct { // the envelope's shape
			ID, Name, Tenant string
			PublishedAt      string `json:"published_at"`
			Payload          json.RawMessage
			Metadata         map[string]string
		}
		if json.Unmarshal([]byte(body), &env) == nil && env.ID != "" {
			// A sinkbus envelope: what it reads back, the sink sends again
			// as the same envelope.
			assert.Equal(t, env.ID, got.UUID)
			again, err := sqs.Marshaler{}.Marshal(got)
			require.NoError(t, err)
			back, err := sqs.Unmarshaler{}.Unmarshal(again)
			require.NoError(t, err)
			assert.Equal(t, got.UUID, back.UUID)
			assert.Equal(t, got.Metadata.Get(sinks.MetaName), back.Metadata.Get(sinks.MetaName))
			assert.Equal(t, got.Metadata.Get(sinks.MetaTenant), back.Metadata.Get(sinks.MetaTenant))
			assert.Equal(t, sinks.UserMetadata(got), sinks.UserMetadata(back))
		}
	})
}

// FuzzGroupID checks the MessageGroupId the sink derives from an event:
// always one SQS accepts, and the one the bus's order key (DefaultOrderKey)
// sees, so that the bus holds back exactly the events SQS keeps in order.
func FuzzGroupID(f *testing.F) {
	f.Add("payload.order_id", `{"order_id":"o-1"}`, "acme", "order.created")
	f.Add("payload.order.id", `{"order":{"id":12345678901234567890}}`, "", "order.updated")
	f.Add("payload.a", `{"a":{"b":[1,2]}}`, "", "a.b")
	f.Add("payload.a", `{"a":"Müller & Söhne"}`, "", "a.b")
	f.Add("payload.a", `{"a":null}`, "", "a.b")
	f.Add("payload.a", `not json`, "", "a.b")
	f.Add("payload.a", `{"a":"`+strings.Repeat("x", 200)+`"}`, "", "a.b")
	f.Add("tenant", `{}`, "tenant with spaces", "a.b")
	f.Add("name", `{}`, "", "order.created")
	f.Add("payload..x", `{}`, "", "a.b")
	f.Add("", `{}`, "", "a.b")
	f.Fuzz(func(t *testing.T, key, payload, tenant, name string) {
		msg := event(name, tenant, payload)
		group, err := sqs.GroupID(key, msg)
		c := sqs.Config{URL: "https://sqs.eu-west-1.amazonaws.com/123456789012/q.fifo", FIFOGroupKey: key}
		if err != nil {
			require.Error(t, c.Validate(), "a key GroupID refuses must be refused by Validate")
			assert.Empty(t, c.DefaultOrderKey())
			return
		}
		require.LessOrEqual(t, len(group), 128)
		require.NotEmpty(t, group)
		for i := 0; i < len(group); i++ {
			require.True(t, group[i] > ' ' && group[i] < 0x7f, "SQS refuses %q in a group id", group[i])
		}

		// The value the bus orders by, read as bus.orderKeyFunc reads it.
		var orderValue string
		switch ok := c.DefaultOrderKey(); {
		case ok == "tenant":
			orderValue = tenant
		case ok == "name":
			orderValue = name
		case strings.HasPrefix(ok, "payload."):
			path, err := filter.NewPath(strings.TrimPrefix(ok, "payload."))
			require.NoError(t, err, "DefaultOrderKey must be a valid order key")
			orderValue = path.String([]byte(payload))
		default:
			t.Fatalf("DefaultOrderKey %q of a FIFO queue is not an order key", ok)
		}
		if orderValue == "" {
			assert.Equal(t, sqs.DefaultGroup, group)
			return
		}
		// Same order value, same group; and a group that is the value
		// itself names no other value.
		other := event(name, tenant, payload)
		again, err := sqs.GroupID(key, other)
		require.NoError(t, err)
		assert.Equal(t, group, again)
		if group != sqs.DefaultGroup && len(group) != 64 {
			assert.Equal(t, orderValue, group)
		}
	})
}
