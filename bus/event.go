package bus

import (
	"crypto/rand"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/oklog/ulid"

	"github.com/sinkbus/sinkbus/field"
	"github.com/sinkbus/sinkbus/filter"
	"github.com/sinkbus/sinkbus/replay"
	"github.com/sinkbus/sinkbus/sinks"
)

// Event is a domain event the application publishes.
type Event struct {
	// ID is the idempotency key every sink carries (webhook-id, STOMP and SQS
	// attributes, the envelope's "id"). Empty means a new ULID. At most 128
	// bytes, without spaces, control characters or '.': Standard Webhooks
	// signs "id.timestamp.body", which a '.' in the id would make ambiguous.
	ID string `json:"id"`
	// Name is dot-separated segments: "order.fulfilled",
	// "be-observer.catalog_product_create". The entity is the first segment.
	Name string `json:"name"`
	// Tenant is optional; file and s3 exports group files by it.
	Tenant string `json:"tenant,omitempty"`
	// PublishedAt is set by Publish when zero.
	PublishedAt time.Time `json:"published_at"`
	// Payload is the event's JSON document. Empty means null.
	Payload json.RawMessage `json:"payload"`
	// Metadata travels as headers or attributes. Keys may not start with
	// "sinkbus_".
	Metadata map[string]string `json:"metadata,omitempty"`
	// Replayed is set on delivery, from sinks.MetaReplayed: true when this
	// delivery is a replay (Integrations.Replay) or a retry of a rejected
	// event (Integrations.RetryRejected) rather than the live one. Publish
	// ignores it.
	Replayed bool `json:"replayed,omitempty"`
}

// Entity returns the first segment of the event name.
func (e Event) Entity() string {
	entity, _, _ := strings.Cut(e.Name, ".")
	return entity
}

const maxIDLen = 128

// validate checks e, naming fields under prefix ("events[2]").
func (e *Event) validate(p *field.Problems, prefix string, maxPayload, maxDepth int) {
	if e.ID != "" {
		if len(e.ID) > maxIDLen {
			p.Add(prefix+"id", "longer than %d bytes", maxIDLen)
		}
		for _, r := range e.ID {
			if r <= ' ' || r == 0x7f {
				p.Add(prefix+"id", "must not contain spaces or control characters")
				break
			}
		}
		if strings.IndexByte(e.ID, '.') >= 0 {
			p.Add(prefix+"id", "must not contain '.' (it becomes the signed webhook-id)")
		}
	}
	if e.Name == "" {
		p.Add(prefix+"name", "required")
	} else if err := filter.ValidateName(e.Name); err != nil {
		p.Merge(prefix+"name", err)
	}
	if len(e.Payload) > maxPayload {
		p.Add(prefix+"payload", "%d bytes is over the limit of %d", len(e.Payload), maxPayload)
	} else if len(e.Payload) > 0 {
		switch ok, deep := filter.ValidJSONDepth(e.Payload, maxDepth); {
		case deep:
			p.Add(prefix+"payload", "nests arrays and objects deeper than %d levels", maxDepth)
		case !ok:
			p.Add(prefix+"payload", "not valid JSON")
		}
	}
	for k := range e.Metadata {
		switch {
		case k == "":
			p.Add(prefix+"metadata", "empty key")
		case strings.HasPrefix(k, sinks.MetaPrefix):
			p.Add(prefix+"metadata."+k, "keys starting with %q are reserved", sinks.MetaPrefix)
		}
	}
}

// newRecords returns n records to fill and the slice of them. A single
// record, what most publishes make, and its slice are one allocation.
func newRecords(n int) []*replay.Record {
	if n == 1 {
		one := new(struct {
			rec  replay.Record
			recs [1]*replay.Record
		})
		one.recs[0] = &one.rec
		return one.recs[:]
	}
	recs, backing := make([]*replay.Record, n), make([]replay.Record, n)
	for i := range backing {
		recs[i] = &backing[i]
	}
	return recs
}

// record fills r with the journal record of a validated event, which every
// delivery is made from. An event without an ID gets one here.
func (e *Event) record(r *replay.Record) {
	payload := []byte(e.Payload)
	if len(payload) == 0 {
		payload = []byte("null")
	}
	md := make(map[string]string, len(e.Metadata)+3)
	for k, v := range e.Metadata {
		md[k] = v
	}
	md[sinks.MetaName] = e.Name
	if e.Tenant != "" {
		md[sinks.MetaTenant] = e.Tenant
	}
	r.UUID, md[sinks.MetaPublishedAt] = idAndTime(e.ID, e.PublishedAt)
	r.Metadata, r.Payload = md, payload
}

// idAndTime returns id, or a new event ID when it is empty, and t as a
// record carries it (RFC 3339, UTC), in one allocation: both live as long
// as the record.
func idAndTime(id string, t time.Time) (string, string) {
	var buf [ulid.EncodedSize + len(time.RFC3339Nano) + 8]byte
	b := buf[:0]
	if id == "" {
		b = appendEventID(b)
	}
	n := len(b)
	s := string(t.UTC().AppendFormat(b, time.RFC3339Nano))
	if id == "" {
		id = s[:n]
	}
	return id, s[n:]
}

// EventFromMessage rebuilds the event a message carries.
func EventFromMessage(msg *message.Message) Event {
	e := Event{
		ID:       msg.UUID,
		Name:     msg.Metadata.Get(sinks.MetaName),
		Tenant:   msg.Metadata.Get(sinks.MetaTenant),
		Payload:  json.RawMessage(msg.Payload),
		Metadata: sinks.UserMetadata(msg),
		Replayed: sinks.IsReplayed(msg),
	}
	e.PublishedAt, _ = time.Parse(time.RFC3339Nano, msg.Metadata.Get(sinks.MetaPublishedAt))
	return e
}

// Replayed reports whether a delivery is a replay or a retry of a rejected
// event rather than the first live delivery.
func Replayed(msg *message.Message) bool { return sinks.IsReplayed(msg) }

// newEventID returns a ULID with crypto/rand entropy, as
// watermill.NewULID does, in one allocation instead of two (its entropy
// read through an io.Reader moves the ID to the heap).
func newEventID() string {
	var buf [ulid.EncodedSize]byte
	return string(appendEventID(buf[:0]))
}

// appendEventID appends a new event ID to dst.
func appendEventID(dst []byte) []byte {
	var id ulid.ULID
	_ = id.SetTime(ulid.Now()) // fails only past the year 10889
	_, _ = rand.Read(id[6:])   // never fails (crypto/rand)
	n := len(dst)
	dst = slices.Grow(dst, ulid.EncodedSize)[:n+ulid.EncodedSize]
	_ = id.MarshalTextTo(dst[n:])
	return dst
}
