package webhook

import (
	"bytes"
	"encoding/json"
	"io"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sinkbus/sinkbus/sinks"
)

// envelopeOverhead bounds what a body holds besides the payload, the id,
// the topic and the metadata: JSON keys, quotes, CloudEvents attributes.
const envelopeOverhead = 128

// appendBody returns the request body of msg in a buffer of its own, sized
// so that it is one allocation: the transport may still read a request's
// body after RoundTrip has returned (an early response while the body is
// being written), so no buffer is reused across requests.
func (p *Publisher) appendBody(topic string, msg *message.Message) []byte {
	n := envelopeOverhead + len(msg.Payload) + len(msg.UUID) + len(topic) + len(p.sourceJSON)
	for k, v := range msg.Metadata {
		n += len(k) + len(v) + 6 // "k":"v",
	}
	b := make([]byte, 0, n)
	if p.sourceJSON != nil {
		return appendCloudEvent(b, p.sourceJSON, topic, msg)
	}
	return sinks.AppendEnvelope(b, msg)
}

// requestBody returns body as a request body and its GetBody. A
// *bytes.Reader behind io.NopCloser is a body net/http can see through: it
// writes the headers and the body with one write instead of flushing the
// headers first, which halves the syscalls per request.
func requestBody(body []byte) (io.ReadCloser, func() (io.ReadCloser, error)) {
	return io.NopCloser(bytes.NewReader(body)), func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(body)), nil
	}
}

// eventName is the event name of msg, or the topic for a message that did
// not come from the bus.
func eventName(topic string, msg *message.Message) string {
	if n := msg.Metadata.Get(sinks.MetaName); n != "" {
		return n
	}
	return topic
}

// appendCloudEvent appends msg as a CloudEvents 1.0 JSON event. source is a
// JSON string already. The tenant, when set, is the "tenant" extension
// attribute; user metadata has no place in CloudEvents attributes (objects
// are not allowed there) and is left out.
func appendCloudEvent(dst []byte, sourceJSON []byte, topic string, msg *message.Message) []byte {
	dst = append(dst, `{"specversion":"1.0","id":`...)
	dst = sinks.AppendJSONString(dst, msg.UUID)
	dst = append(dst, `,"source":`...)
	dst = append(dst, sourceJSON...)
	dst = append(dst, `,"type":`...)
	dst = sinks.AppendJSONString(dst, eventName(topic, msg))
	if t := msg.Metadata.Get(sinks.MetaPublishedAt); t != "" {
		dst = append(dst, `,"time":`...)
		dst = sinks.AppendJSONString(dst, t)
	}
	if t := msg.Metadata.Get(sinks.MetaTenant); t != "" {
		dst = append(dst, `,"tenant":`...)
		dst = sinks.AppendJSONString(dst, t)
	}
	dst = append(dst, `,"datacontenttype":"application/json"`...)
	switch {
	case len(msg.Payload) == 0:
	case msg.Metadata.Get(sinks.MetaName) != "" || json.Valid(msg.Payload):
		dst = append(dst, `,"data":`...)
		dst = append(dst, msg.Payload...)
	default:
		dst = append(dst, `,"data":`...)
		dst = sinks.AppendJSONString(dst, string(msg.Payload))
	}
	return append(dst, '}')
}
