package sinks

import (
	"encoding/json"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Envelope is the JSON document every sink sends for one event: NewStore's
// webhook schema with the event id added. The file and s3 sinks write one per
// line; the webhook sink posts it; stomp and sqs send it as the body.
type Envelope struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Tenant      string    `json:"tenant,omitempty"`
	PublishedAt time.Time `json:"published_at"`
	// Replayed is true on a replay or a retry of a rejected event (see
	// IsReplayed), so that a receiver or a reader of an export can tell a
	// second delivery from a live one. The key is left out on live ones.
	Replayed bool              `json:"replayed,omitempty"`
	Payload  json.RawMessage   `json:"payload"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// IsReplayed reports whether msg is a replay or a retry of a rejected event
// rather than its live delivery: the bus sets MetaReplayed to "true" on those.
func IsReplayed(msg *message.Message) bool {
	return msg.Metadata.Get(MetaReplayed) == "true"
}

// EnvelopeOf returns the envelope of msg.
func EnvelopeOf(msg *message.Message) (Envelope, error) {
	var e Envelope
	return e, json.Unmarshal(AppendEnvelope(nil, msg), &e)
}

// AppendEnvelope appends the envelope of msg to dst, as compact JSON. The bus's
// own sinkbus_ metadata is not copied into "metadata": it becomes the
// envelope's fields ("replayed":true included, on replayed deliveries only).
//
// It is written by hand because it runs once per delivery on every sink's hot
// path: encoding/json would reflect over a struct and copy the payload twice.
// The payload is the message payload as is when it is JSON (the bus
// guarantees it); a foreign message with a non-JSON payload gets it as a
// JSON string.
func AppendEnvelope(dst []byte, msg *message.Message) []byte {
	dst = append(dst, `{"id":`...)
	dst = AppendJSONString(dst, msg.UUID)
	dst = append(dst, `,"name":`...)
	dst = AppendJSONString(dst, msg.Metadata.Get(MetaName))
	if t := msg.Metadata.Get(MetaTenant); t != "" {
		dst = append(dst, `,"tenant":`...)
		dst = AppendJSONString(dst, t)
	}
	dst = append(dst, `,"published_at":`...)
	if p := msg.Metadata.Get(MetaPublishedAt); p != "" {
		dst = AppendJSONString(dst, p)
	} else {
		dst = append(dst, `"0001-01-01T00:00:00Z"`...)
	}
	if IsReplayed(msg) {
		dst = append(dst, `,"replayed":true`...)
	}
	dst = append(dst, `,"payload":`...)
	switch {
	case len(msg.Payload) == 0:
		dst = append(dst, "null"...)
	case msg.Metadata.Get(MetaName) != "" || json.Valid(msg.Payload):
		dst = append(dst, msg.Payload...)
	default:
		dst = AppendJSONString(dst, string(msg.Payload))
	}
	dst = appendUserMetadata(dst, msg.Metadata)
	return append(dst, '}')
}

func appendUserMetadata(dst []byte, md message.Metadata) []byte {
	n := 0
	for k := range md {
		if !strings.HasPrefix(k, MetaPrefix) {
			n++
		}
	}
	if n == 0 {
		return dst
	}
	// The keys are sorted on the stack: no allocation for the usual few.
	var stack [16]string
	keys := stack[:0]
	if n > len(stack) {
		keys = make([]string, 0, n)
	}
	for k := range md {
		if !strings.HasPrefix(k, MetaPrefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	dst = append(dst, `,"metadata":{`...)
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendJSONString(dst, k)
		dst = append(dst, ':')
		dst = AppendJSONString(dst, md[k])
	}
	return append(dst, '}')
}

// UserMetadata returns the metadata of msg that the application set, without
// the bus's own sinkbus_ keys.
func UserMetadata(msg *message.Message) map[string]string {
	var out map[string]string
	for k, v := range msg.Metadata {
		if strings.HasPrefix(k, MetaPrefix) {
			continue
		}
		if out == nil {
			out = make(map[string]string)
		}
		out[k] = v
	}
	return out
}

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a JSON string, escaped as encoding/json does
// (HTML characters included) and with invalid UTF-8 replaced by U+FFFD.
func AppendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
