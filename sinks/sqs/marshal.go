package sqs

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"maps"
	"sort"
	"strings"
	"unicode/utf8"

	wsqs "github.com/ThreeDotsLabs/watermill-aws/sqs"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/sinkbus/sinkbus/filter"
	"github.com/sinkbus/sinkbus/sinks"
)

// Message attributes the sink sets. Id, name, tenant, the replay flag and
// the W3C trace context of the delivery attempt (traceparent and
// tracestate, when the bus traces) come first, at most six; user metadata
// follows one attribute per key while they fit in SQS's ten, else all of it
// goes into AttrMetadata as one JSON object.
const (
	AttrID       = "sinkbus_id"       // the event id (the message UUID)
	AttrName     = sinks.MetaName     // the event name
	AttrTenant   = sinks.MetaTenant   // the tenant, when there is one
	AttrReplayed = sinks.MetaReplayed // "true" on replayed deliveries
	AttrMetadata = "sinkbus_metadata" // the user metadata as a JSON object, when folded
)

// Marshaler turns a message into the SQS message the sink sends: the body is
// the event envelope (sinks.AppendEnvelope), which carries all metadata, and
// the attributes are the ones named by the Attr constants, never more than
// MaxAttributes. It implements watermill-aws's sqs.Marshaler, so a
// watermill-aws Publisher can send the same shape.
type Marshaler struct{}

var _ wsqs.Marshaler = Marshaler{}

// Marshal never fails.
func (Marshaler) Marshal(msg *message.Message) (*types.Message, error) {
	attrs, _ := attributes(msg)
	return &types.Message{
		Body:              aws.String(string(sinks.AppendEnvelope(nil, msg))),
		MessageAttributes: attrs,
	}, nil
}

const stringType = wsqs.AWSStringDataType

// attributes returns the message attributes of msg and their size as SQS
// counts it (names, data types and values).
func attributes(msg *message.Message) (map[string]types.MessageAttributeValue, int) {
	attrs := make(map[string]types.MessageAttributeValue, 4)
	size := 0
	put := func(name, value string) {
		if value == "" { // SQS refuses empty values
			return
		}
		attrs[name] = types.MessageAttributeValue{DataType: aws.String(stringType), StringValue: aws.String(value)}
		size += len(name) + len(stringType) + len(value)
	}
	put(AttrID, msg.UUID)
	put(AttrName, msg.Metadata.Get(sinks.MetaName))
	put(AttrTenant, msg.Metadata.Get(sinks.MetaTenant))
	put(AttrReplayed, msg.Metadata.Get(sinks.MetaReplayed))
	if ctx := msg.Context(); sinks.Traced(ctx) {
		sinks.InjectTrace(ctx, attrCarrier(put))
	}

	var user []string
	fits := true
	for k, v := range msg.Metadata {
		if strings.HasPrefix(k, sinks.MetaPrefix) {
			continue
		}
		if _, ours := attrs[k]; ours {
			continue // the attempt's traceparent: the user's stays in the body
		}
		user = append(user, k)
		fits = fits && validAttributeName(k) && v != "" && validSQSText(v)
	}
	if len(user) == 0 {
		return attrs, size
	}
	if fits && len(attrs)+len(user) <= MaxAttributes {
		for _, k := range user {
			put(k, msg.Metadata[k])
		}
		return attrs, size
	}
	sort.Strings(user)
	b := []byte{'{'}
	for i, k := range user {
		if i > 0 {
			b = append(b, ',')
		}
		b = sinks.AppendJSONString(b, k)
		b = append(b, ':')
		b = sinks.AppendJSONString(b, msg.Metadata[k])
	}
	put(AttrMetadata, string(append(b, '}')))
	return attrs, size
}

// attrCarrier sets message attributes for the trace context.
type attrCarrier func(name, value string)

func (attrCarrier) Get(string) string     { return "" }
func (c attrCarrier) Set(key, val string) { c(key, val) }
func (attrCarrier) Keys() []string        { return nil }

// validAttributeName follows SQS: up to 256 of A-Z a-z 0-9 _ - ., no
// leading, trailing or doubled period, no AWS. or Amazon. prefix.
func validAttributeName(s string) bool {
	if s == "" || len(s) > 256 || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	lower := strings.ToLower(s)
	if strings.HasPrefix(lower, "aws.") || strings.HasPrefix(lower, "amazon.") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// validSQSText reports whether SQS accepts s in a body or string attribute:
// valid UTF-8 of #x9 #xA #xD #x20-#xD7FF #xE000-#xFFFD #x10000-#x10FFFF.
func validSQSText(s string) bool {
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"): // invalid UTF-8
			return false
		case r == 0x9 || r == 0xA || r == 0xD:
		case r < 0x20, r >= 0xD800 && r < 0xE000, r == 0xFFFE, r == 0xFFFF:
			return false
		}
	}
	return true
}

// groupKey is a parsed Config.FIFOGroupKey.
type groupKey struct {
	kind string       // "tenant", "name" or "payload"
	path *filter.Path // for "payload"
}

// parseGroupKey reads a FIFOGroupKey. Payload paths are read by the same
// filter.Path as the bus's payload order keys, so that a group and the
// order key DefaultOrderKey derives from it always agree on the value.
func parseGroupKey(s string) (groupKey, error) {
	switch s {
	case "", "tenant":
		return groupKey{kind: "tenant"}, nil
	case "name":
		return groupKey{kind: "name"}, nil
	}
	rest, ok := strings.CutPrefix(s, "payload.")
	if !ok {
		return groupKey{}, errors.New("unknown group key")
	}
	path, err := filter.NewPath(rest)
	if err != nil {
		return groupKey{}, err
	}
	return groupKey{kind: "payload", path: path}, nil
}

// group returns the MessageGroupId of msg: the key's value as SQS accepts
// it (see fifoID), or DefaultGroup when the event has none.
func (k groupKey) group(msg *message.Message) string {
	var v string
	switch k.kind {
	case "tenant":
		v = msg.Metadata.Get(sinks.MetaTenant)
	case "name":
		v = msg.Metadata.Get(sinks.MetaName)
	case "payload":
		v = k.path.String(msg.Payload)
	}
	if v == "" {
		return DefaultGroup
	}
	return fifoID(v)
}

// fifoID returns s when SQS accepts it as a MessageGroupId or
// MessageDeduplicationId (1 to 128 ASCII letters, digits and punctuation),
// else its SHA-256 in hex, which it always accepts.
func fifoID(s string) string {
	ok := s != "" && len(s) <= 128
	for i := 0; ok && i < len(s); i++ {
		ok = s[i] > ' ' && s[i] < 0x7f
	}
	if ok {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// Unmarshaler reads back what the sink sent, for a watermill-aws Subscriber:
// the message UUID is the event id, the payload the event's payload, and the
// metadata the envelope's metadata plus the sinkbus_ keys (name, tenant,
// published_at, replayed). Messages that are not sinkbus envelopes are read
// as watermill-aws's DefaultMarshalerUnmarshaler reads them.
type Unmarshaler struct{}

var _ wsqs.Unmarshaler = Unmarshaler{}

// Unmarshal implements watermill-aws's sqs.Unmarshaler.
func (Unmarshaler) Unmarshal(m *types.Message) (*message.Message, error) {
	// Strings, not sinks.Envelope: published_at comes back byte for byte.
	var env struct {
		ID          string            `json:"id"`
		Name        string            `json:"name"`
		Tenant      string            `json:"tenant"`
		PublishedAt string            `json:"published_at"`
		Payload     json.RawMessage   `json:"payload"`
		Metadata    map[string]string `json:"metadata"`
	}
	if m.Body == nil || json.Unmarshal([]byte(*m.Body), &env) != nil || env.ID == "" {
		return wsqs.DefaultMarshalerUnmarshaler{}.Unmarshal(withStringUUID(m))
	}
	var payload []byte
	if string(env.Payload) != "null" {
		payload = env.Payload
	}
	msg := message.NewMessage(env.ID, payload)
	for k, v := range env.Metadata {
		msg.Metadata.Set(k, v)
	}
	set := func(k, v string) {
		if v != "" {
			msg.Metadata.Set(k, v)
		}
	}
	set(sinks.MetaName, env.Name)
	set(sinks.MetaTenant, env.Tenant)
	if env.PublishedAt != "0001-01-01T00:00:00Z" {
		set(sinks.MetaPublishedAt, env.PublishedAt)
	}
	if a, ok := m.MessageAttributes[AttrReplayed]; ok && a.StringValue != nil {
		set(sinks.MetaReplayed, *a.StringValue)
	}
	return msg, nil
}

// withStringUUID returns m, or a copy without watermill-aws's UUID attribute
// when that attribute has no string value: DefaultMarshalerUnmarshaler
// dereferences it unchecked, and a queue may hold anything.
func withStringUUID(m *types.Message) *types.Message {
	a, ok := m.MessageAttributes[wsqs.UUIDAttribute]
	if !ok || a.StringValue != nil {
		return m
	}
	c := *m
	c.MessageAttributes = maps.Clone(m.MessageAttributes)
	delete(c.MessageAttributes, wsqs.UUIDAttribute)
	return &c
}
