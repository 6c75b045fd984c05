package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"sync"
	"sync/atomic"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sinkbus/sinkbus/sinks"
)

// maxPooledBody is the largest body buffer kept for reuse; a rare huge event
// should not pin its buffer for the life of the process.
const maxPooledBody = 256 << 10

var errBodyClosed = errors.New("sinkbus: webhook request body closed")

// requestBody is one request's body, taken from a pool. The HTTP transport
// may still read or close a request body in its own goroutine after Do has
// returned (an early response while the body is being written), so the
// buffer goes back to the pool only when both the publisher and the
// transport are done with it: two references, the last one recycles.
type requestBody struct {
	mu     sync.Mutex
	buf    []byte
	off    int
	closed bool
	refs   atomic.Int32

	// scratch holds the per-request header values before they become one
	// string.
	scratch []byte
	getBody func() (io.ReadCloser, error)
}

var bodyPool = sync.Pool{New: func() any {
	b := &requestBody{buf: make([]byte, 0, 2048), scratch: make([]byte, 0, 256)}
	b.getBody = b.copyBody
	return b
}}

func getRequestBody() *requestBody {
	b := bodyPool.Get().(*requestBody)
	b.buf, b.off, b.closed = b.buf[:0], 0, false
	b.refs.Store(2) // the publisher's and the transport's
	return b
}

// Read implements io.Reader for the transport.
func (b *requestBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, errBodyClosed
	}
	if b.off >= len(b.buf) {
		return 0, io.EOF
	}
	n := copy(p, b.buf[b.off:])
	b.off += n
	return n, nil
}

// Close is the transport's release; it may come from any goroutine, more
// than once.
func (b *requestBody) Close() error {
	b.mu.Lock()
	already := b.closed
	b.closed = true
	b.mu.Unlock()
	if !already {
		b.release()
	}
	return nil
}

// copyBody is the request's GetBody: the transport calls it, before Do
// returns, to resend on a fresh connection when a reused one was dead.
func (b *requestBody) copyBody() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(bytes.Clone(b.buf))), nil
}

func (b *requestBody) release() {
	if b.refs.Add(-1) != 0 {
		return
	}
	if cap(b.buf) <= maxPooledBody {
		bodyPool.Put(b)
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
