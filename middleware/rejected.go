package middleware

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sinkbus/sinkbus/sinks"
)

// ErrNotFound is returned for a rejected event (or other stored item) that
// does not exist.
var ErrNotFound = errors.New("sinkbus: not found")

// DefaultRejectedSize is how many rejected events a store keeps per
// integration (NewStore: 30).
const DefaultRejectedSize = 30

// RejectedEvent is an event an integration gave up on, with why.
type RejectedEvent struct {
	EventID     string            `json:"id"`
	Name        string            `json:"name"`
	Tenant      string            `json:"tenant,omitempty"`
	PublishedAt time.Time         `json:"published_at"`
	Payload     json.RawMessage   `json:"payload"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	// Reason is the text of the last failure.
	Reason string `json:"reason"`
	// StatusCode is the destination's status for the last failure, zero
	// when it answered none.
	StatusCode int `json:"status_code,omitempty"`
	// Attempts is how many attempts were made.
	Attempts  int       `json:"attempts"`
	CreatedAt time.Time `json:"created_at"`
}

// Failed records a failure of e at a time: its reason (cut to 2 KiB), the
// destination's status when err carries one (sinks.StatusError), zero
// otherwise.
func (e *RejectedEvent) Failed(err error, at time.Time) {
	e.Reason = reasonOf(err)
	e.StatusCode = 0
	var se *sinks.StatusError
	if errors.As(err, &se) {
		e.StatusCode = se.StatusCode
	}
	e.CreatedAt = at
}

// RejectedFromMessage returns the event msg carries, read from the bus's
// metadata keys (sinks.Meta*); the failure fields are left zero. A payload
// that is not JSON is kept as a JSON string; a message with the bus's name
// key (sinks.MetaName) is one the bus checked when it was published.
func RejectedFromMessage(msg *message.Message) RejectedEvent {
	r := RejectedEvent{
		EventID:  msg.UUID,
		Name:     msg.Metadata.Get(sinks.MetaName),
		Tenant:   msg.Metadata.Get(sinks.MetaTenant),
		Metadata: sinks.UserMetadata(msg),
	}
	if p := msg.Metadata.Get(sinks.MetaPublishedAt); p != "" {
		r.PublishedAt, _ = time.Parse(time.RFC3339Nano, p)
	}
	switch {
	case len(msg.Payload) == 0:
	case msg.Metadata.Get(sinks.MetaName) != "" || json.Valid(msg.Payload):
		// An event of the bus had its payload checked when it was published
		// (the rule the envelope encoder follows too): a 1 MiB payload is
		// not scanned again at each rejection.
		r.Payload = bytes.Clone(msg.Payload)
	default:
		r.Payload, _ = json.Marshal(string(msg.Payload))
	}
	return r
}

// Message returns the event as a message the bus can deliver again: the
// event id as UUID, the payload, the user metadata, and the bus's metadata
// keys, marked as replayed (sinks.MetaReplayed).
func (r RejectedEvent) Message() *message.Message {
	msg := message.NewMessage(r.EventID, message.Payload(bytes.Clone(r.Payload)))
	for k, v := range r.Metadata {
		msg.Metadata.Set(k, v)
	}
	msg.Metadata.Set(sinks.MetaName, r.Name)
	if r.Tenant != "" {
		msg.Metadata.Set(sinks.MetaTenant, r.Tenant)
	}
	if !r.PublishedAt.IsZero() {
		msg.Metadata.Set(sinks.MetaPublishedAt, r.PublishedAt.UTC().Format(time.RFC3339Nano))
	}
	msg.Metadata.Set(sinks.MetaReplayed, "true")
	return msg
}

// RejectedStore keeps the last rejected events of each integration.
// Implementations are safe for concurrent use.
type RejectedStore interface {
	// Put stores e; an entry with the same event id is replaced. When the
	// store is full, the oldest entries are evicted and returned.
	Put(integrationID string, e RejectedEvent) (evicted []RejectedEvent, err error)
	// List returns the rejected events of integrationID, newest first.
	List(integrationID string) ([]RejectedEvent, error)
	// Get returns one rejected event, or ErrNotFound.
	Get(integrationID, eventID string) (RejectedEvent, error)
	// Delete removes one rejected event, or returns ErrNotFound.
	Delete(integrationID, eventID string) error
	// Drop forgets every rejected event of integrationID.
	Drop(integrationID string) error
}

// MemoryRejected is a RejectedStore in memory.
type MemoryRejected struct {
	mu     sync.Mutex
	size   int
	events map[string]rejectedState
}

// NewMemoryRejected returns a store keeping size events per integration;
// zero means DefaultRejectedSize.
func NewMemoryRejected(size int) *MemoryRejected {
	if size <= 0 {
		size = DefaultRejectedSize
	}
	return &MemoryRejected{size: size, events: make(map[string]rejectedState)}
}

// Put stores e, replacing an entry with the same event id, and returns the
// entries evicted to make room.
func (m *MemoryRejected) Put(integrationID string, e RejectedEvent) ([]RejectedEvent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, evicted := m.events[integrationID].put(e, 0, m.size)
	m.events[integrationID] = st
	return evicted, nil
}

// List returns the rejected events of integrationID, newest first.
func (m *MemoryRejected) List(integrationID string) ([]RejectedEvent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.events[integrationID].newestFirst(), nil
}

// Get returns one rejected event, or ErrNotFound.
func (m *MemoryRejected) Get(integrationID, eventID string) (RejectedEvent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.events[integrationID].find(eventID)
}

// Delete removes one rejected event, or returns ErrNotFound.
func (m *MemoryRejected) Delete(integrationID, eventID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, err := m.events[integrationID].without(eventID)
	if err != nil {
		return err
	}
	m.events[integrationID] = st
	return nil
}

// Drop forgets every rejected event of integrationID.
func (m *MemoryRejected) Drop(integrationID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.events, integrationID)
	return nil
}

// rejectedState is the rejected events of one integration, oldest first,
// and for the file store the segment each one's record is in. Changes make
// a new one: readers may hold the old one.
type rejectedState struct {
	events []RejectedEvent
	segs   []uint64 // segs[i]: the segment of events[i]'s record
}

// put returns st with e (whose record is in seg) added, without the entry
// of the same event id, and the oldest entries past size that fell out.
func (st rejectedState) put(e RejectedEvent, seg uint64, size int) (out rejectedState, evicted []RejectedEvent) {
	out.events = make([]RejectedEvent, 0, len(st.events)+1)
	out.segs = make([]uint64, 0, len(st.events)+1)
	for i, o := range st.events {
		if o.EventID != e.EventID {
			out.events = append(out.events, o)
			out.segs = append(out.segs, st.segs[i])
		}
	}
	out.events = append(out.events, e)
	out.segs = append(out.segs, seg)
	if n := len(out.events) - size; n > 0 {
		evicted = append(evicted, out.events[:n]...)
		out.events, out.segs = out.events[n:], out.segs[n:]
	}
	return out, evicted
}

// without returns st without eventID, or ErrNotFound.
func (st rejectedState) without(eventID string) (rejectedState, error) {
	for i, e := range st.events {
		if e.EventID == eventID {
			return rejectedState{
				events: slices.Concat(st.events[:i], st.events[i+1:]),
				segs:   slices.Concat(st.segs[:i], st.segs[i+1:]),
			}, nil
		}
	}
	return st, ErrNotFound
}

// find returns the entry of eventID, or ErrNotFound.
func (st rejectedState) find(eventID string) (RejectedEvent, error) {
	for _, e := range st.events {
		if e.EventID == eventID {
			return e, nil
		}
	}
	return RejectedEvent{}, ErrNotFound
}

func (st rejectedState) newestFirst() []RejectedEvent { return newestFirst(st.events) }

func newestFirst(l []RejectedEvent) []RejectedEvent {
	out := make([]RejectedEvent, len(l))
	for i, e := range l {
		out[len(l)-1-i] = e
	}
	return out
}

// FileRejected is a RejectedStore that survives restarts: an append-only
// log of changes per integration, in segment files under a directory of
// its own (see the file stores in filestore.go). Each change is synced to
// disk before it returns, as the event is acknowledged on the strength of
// it; concurrent rejections of one integration share the fsync. A change
// costs in proportion to itself, integrations do not wait for each other,
// and List and Get never wait for a write. The events kept (RejectedSize
// per integration, with their payloads) are held in memory too.
type FileRejected struct {
	size  int
	files *docDir[rejectedState]
}

// rejectedSegmentBytes is the size of a FileRejected segment: events are
// evicted oldest first, so old segments empty and go as new ones fill.
// Starting and retiring a segment each cost a directory fsync: segments
// are large enough for that to be rare.
const rejectedSegmentBytes = 16 << 20

// rejectedRecord is the head of one record of a FileRejected file. A put's
// event payload follows it, after a newline, as it is.
type rejectedRecord struct {
	Put    *RejectedEvent `json:"put,omitempty"`
	Evict  []string       `json:"evict,omitempty"`
	Delete string         `json:"delete,omitempty"`
}

// rejectedFile is the document of the former format: one per integration,
// rewritten whole at each change.
type rejectedFile struct {
	IntegrationID string          `json:"integration_id"`
	Events        []RejectedEvent `json:"rejected_events"` // newest first
}

// OpenFileRejected opens (creating it if needed) the store kept in dir, size
// events per integration (zero means DefaultRejectedSize), and loads it. A
// file holding more events than size keeps them until the next Put, which
// evicts (and so reports) the excess. Files of the former format (one
// .rejected.json document per integration) are converted. What cannot be
// decoded is set aside (see Unreadable).
func OpenFileRejected(dir string, size int) (*FileRejected, error) {
	if size <= 0 {
		size = DefaultRejectedSize
	}
	codec := docCodec[rejectedState]{
		apply: applyRejected,
		oldest: func(st rejectedState) (uint64, bool) {
			if len(st.segs) == 0 {
				return 0, false
			}
			return slices.Min(st.segs), true
		},
		records: func(st rejectedState) [][]byte {
			out := make([][]byte, len(st.events))
			for i, e := range st.events {
				out[i] = encodeRejected(rejectedRecord{Put: &e})
			}
			return out
		},
		bytes: func(st rejectedState) int64 {
			var n int64
			for _, e := range st.events {
				n += int64(len(e.Payload)+len(e.Reason)) + 512
			}
			return n
		},
	}
	files, err := openDocDir(dir, ".rejected", true, rejectedSegmentBytes, rejectedState{}, codec, ".rejected.json",
		func(data []byte) (string, rejectedState, error) {
			var f rejectedFile
			if err := json.Unmarshal(data, &f); err != nil {
				return "", rejectedState{}, err
			}
			var st rejectedState
			for _, e := range newestFirst(f.Events) { // oldest first
				st, _ = st.put(e, 0, math.MaxInt)
			}
			return f.IntegrationID, st, nil
		})
	if err != nil {
		return nil, err
	}
	return &FileRejected{size: size, files: files}, nil
}

// encodeRejected returns the record of r: its head, and a put's payload.
func encodeRejected(r rejectedRecord) []byte {
	var payload []byte
	if r.Put != nil {
		e := *r.Put
		payload, e.Payload = e.Payload, nil
		r.Put = &e
	}
	head, err := json.Marshal(r)
	if err != nil { // a RejectedEvent always encodes
		panic(err)
	}
	return append(append(head, '\n'), payload...)
}

// applyRejected replays one record of a FileRejected log, found in segment
// seg, on st. Sizes are not applied: what a put evicted is in the record.
func applyRejected(st rejectedState, body []byte, seg uint64) (rejectedState, error) {
	head, payload, ok := bytes.Cut(body, []byte{'\n'})
	var r rejectedRecord
	if !ok {
		return st, errors.New("sinkbus: rejected events: record without a payload line")
	}
	if err := json.Unmarshal(head, &r); err != nil {
		return st, fmt.Errorf("sinkbus: rejected events: unreadable record: %w", err)
	}
	switch {
	case r.Put != nil:
		e := *r.Put
		e.Payload = nil
		if len(payload) > 0 {
			e.Payload = json.RawMessage(bytes.Clone(payload))
		}
		st, _ = st.put(e, seg, math.MaxInt)
		for _, id := range r.Evict {
			st, _ = st.without(id)
		}
	case r.Delete != "":
		st, _ = st.without(r.Delete)
	}
	return st, nil
}

// Put stores e durably, replacing an entry with the same event id, and
// returns the entries evicted to make room. Nothing changes when the
// record cannot be written.
func (s *FileRejected) Put(integrationID string, e RejectedEvent) ([]RejectedEvent, error) {
	evicted, err := s.files.change(integrationID, func(st rejectedState, seg uint64) (rejectedState, []byte, any, error) {
		next, evicted := st.put(e, seg, s.size)
		r := rejectedRecord{Put: &e}
		for _, o := range evicted {
			r.Evict = append(r.Evict, o.EventID)
		}
		return next, encodeRejected(r), evicted, nil
	})
	if err != nil {
		return nil, err
	}
	return evicted.([]RejectedEvent), nil
}

// List returns the rejected events of integrationID, newest first, as
// last written, without waiting for a write under way.
func (s *FileRejected) List(integrationID string) ([]RejectedEvent, error) {
	return s.files.read(integrationID).newestFirst(), nil
}

// Get returns one rejected event, or ErrNotFound.
func (s *FileRejected) Get(integrationID, eventID string) (RejectedEvent, error) {
	return s.files.read(integrationID).find(eventID)
}

// Delete removes one rejected event durably, or returns ErrNotFound.
func (s *FileRejected) Delete(integrationID, eventID string) error {
	if _, err := s.Get(integrationID, eventID); err != nil {
		return err // no log to create for nothing
	}
	_, err := s.files.change(integrationID, func(st rejectedState, _ uint64) (rejectedState, []byte, any, error) {
		next, err := st.without(eventID)
		if err != nil {
			return st, nil, nil, err
		}
		return next, encodeRejected(rejectedRecord{Delete: eventID}), nil, nil
	})
	return err
}

// Drop forgets every rejected event of integrationID and removes its log.
func (s *FileRejected) Drop(integrationID string) error { return s.files.drop(integrationID) }

// Unreadable returns what OpenFileRejected could not decode: each was
// renamed with UnreadableSuffix and left out, so that the store opens.
func (s *FileRejected) Unreadable() []error { return s.files.unreadable }

// Close closes the files. The store must not be used afterwards.
func (s *FileRejected) Close() error { return s.files.close() }
