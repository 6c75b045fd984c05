package webhook

import (
	"bytes"
	"encoding/json"
	"io"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sinkbus/sinkbus/sinks"
)

// maxPooledScratch is the largest scratch buffer kept for reuse; a rare
// huge event should not pin its buffer for the life of the process.
const maxPooledScratch = 256 << 10

// scratch is where one request's body and per-request header values are
// built, taken from a pool. The request itself gets a copy of the body it
// owns: the transport may still read or close a request body after
// RoundTrip has returned (an early response while the body is being
// written), so a pooled buffer could be recycled under it.
type scratch struct {
	body   []byte
	header []byte
}

var scratchPool = sync.Pool{New: func() any {
	return &scratch{body: make([]byte, 0, 2048), header: make([]byte, 0, 256)}
}}

func getScratch() *scratch {
	s := scratchPool.Get().(*scratch)
	s.body, s.header = s.body[:0], s.header[:0]
	return s
}

func (s *scratch) release() {
	if cap(s.body) <= maxPooledScratch {
		scratchPool.Put(s)
	}
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
