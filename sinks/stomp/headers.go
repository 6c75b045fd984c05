package stomp

import (
	"context"
	"sort"
	"strings"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/go-stomp/stomp/v3/frame"

	"github.com/sinkbus/sinkbus/sinks"
)

// Headers the sink sets on every SEND besides destination, content-type
// (application/json), content-length, receipt and persistent (true).
const (
	HeaderID       = "sinkbus-id"       // event id, the receiver's idempotency key
	HeaderName     = "sinkbus-name"     // event name, e.g. order.fulfilled
	HeaderTenant   = "sinkbus-tenant"   // tenant, when the event has one
	HeaderReplayed = "sinkbus-replayed" // "true" on replayed deliveries
)

// ContentType is the content-type of every SEND: the body is the sinkbus
// envelope.
const ContentType = "application/json"

// reservedHeaders are headers that user metadata must not set (lower case):
// STOMP's own, and those a broker acts on (RabbitMQ checks user-id against
// the login and reads queue arguments from a first SEND; ActiveMQ schedules
// and groups by its own). The metadata still travels in the envelope.
var reservedHeaders = map[string]bool{
	"destination": true, "receipt": true, "receipt-id": true, "content-length": true,
	"content-type": true, "transaction": true, "persistent": true, "message-id": true,
	"subscription": true, "ack": true, "id": true, "host": true, "login": true,
	"passcode": true, "heart-beat": true, "accept-version": true, "version": true,
	"session": true, "server": true, "message": true, "redelivered": true,
	"expires": true, "expiration": true, "priority": true, "type": true,
	"reply-to": true, "correlation-id": true, "user-id": true, "app-id": true,
	"amqp-message-id": true, "timestamp": true, "durable": true, "auto-delete": true,
	"exclusive": true, "x-queue-name": true, "x-message-ttl": true, "x-expires": true,
	"x-overflow": true, "x-delivery-limit": true, "x-single-active-consumer": true,
}

var reservedPrefixes = []string{
	"sinkbus-", "jms", "amq_", "activemq.", "x-queue-", "x-dead-letter-", "x-max-", "x-stream-",
}

// headerKey turns a metadata key into a header name: characters other than
// letters, digits, '.', '-' and '_' become '_'. It reports false for keys
// the sink must not send as headers.
func headerKey(k string) (string, bool) {
	if k == "" || len(k) > 256 {
		return "", false
	}
	clean := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			return r
		}
		return '_'
	}, k)
	lower := strings.ToLower(clean)
	if reservedHeaders[lower] {
		return "", false
	}
	for _, p := range reservedPrefixes {
		if strings.HasPrefix(lower, p) {
			return "", false
		}
	}
	return clean, true
}

// setHeaders adds the sink's headers, msg's user metadata and the W3C
// trace context of ctx (traceparent, tracestate: the delivery attempt's,
// when the bus traces) to a SEND frame; user keys in sorted order, so that
// frames are reproducible.
func setHeaders(ctx context.Context, f *frame.Frame, msg *message.Message) {
	f.Header.Set("persistent", "true")
	f.Header.Add(HeaderID, msg.UUID)
	if v := msg.Metadata.Get(sinks.MetaName); v != "" {
		f.Header.Add(HeaderName, v)
	}
	if v := msg.Metadata.Get(sinks.MetaTenant); v != "" {
		f.Header.Add(HeaderTenant, v)
	}
	if v := msg.Metadata.Get(sinks.MetaReplayed); v != "" {
		f.Header.Add(HeaderReplayed, v)
	}
	var keys []string
	for k := range msg.Metadata {
		if !strings.HasPrefix(k, sinks.MetaPrefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var seen map[string]bool
	for _, k := range keys {
		h, ok := headerKey(k)
		if !ok {
			continue
		}
		if h != k { // two keys may clean to one name: the first wins
			if seen == nil {
				seen = make(map[string]bool)
			}
			if _, exact := msg.Metadata[h]; exact || seen[h] {
				continue
			}
			seen[h] = true
		}
		f.Header.Add(h, msg.Metadata[k])
	}
	sinks.InjectTrace(ctx, frameCarrier{f.Header})
}

// frameCarrier sets the trace context's headers, in place of a user's.
type frameCarrier struct{ h *frame.Header }

func (c frameCarrier) Get(key string) string { return c.h.Get(key) }
func (c frameCarrier) Set(key, val string)   { c.h.Set(key, val) }
func (frameCarrier) Keys() []string          { return nil }
