package middleware

import (
	"bytes"
	"encoding/json"
	"errors"
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
// that is not JSON is kept as a JSON string.
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
	case json.Valid(msg.Payload):
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
	events map[string][]RejectedEvent // oldest first
}

// NewMemoryRejected returns a store keeping size events per integration;
// zero means DefaultRejectedSize.
func NewMemoryRejected(size int) *MemoryRejected {
	if size <= 0 {
		size = DefaultRejectedSize
	}
	return &MemoryRejected{size: size, events: make(map[string][]RejectedEvent)}
}

// Put stores e, replacing an entry with the same event id, and returns the
// entries evicted to make room.
func (m *MemoryRejected) Put(integrationID string, e RejectedEvent) ([]RejectedEvent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, evicted := m.put(m.events[integrationID], e)
	m.events[integrationID] = l
	return evicted, nil
}

// put returns l with e added and what fell out; l is not modified.
func (m *MemoryRejected) put(l []RejectedEvent, e RejectedEvent) (out, evicted []RejectedEvent) {
	out = make([]RejectedEvent, 0, len(l)+1)
	for _, o := range l {
		if o.EventID != e.EventID {
			out = append(out, o)
		}
	}
	out = append(out, e)
	if n := len(out) - m.size; n > 0 {
		evicted = append(evicted, out[:n]...)
		out = out[n:]
	}
	return out, evicted
}

// List returns the rejected events of integrationID, newest first.
func (m *MemoryRejected) List(integrationID string) ([]RejectedEvent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return newestFirst(m.events[integrationID]), nil
}

// Get returns one rejected event, or ErrNotFound.
func (m *MemoryRejected) Get(integrationID, eventID string) (RejectedEvent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range m.events[integrationID] {
		if e.EventID == eventID {
			return e, nil
		}
	}
	return RejectedEvent{}, ErrNotFound
}

// Delete removes one rejected event, or returns ErrNotFound.
func (m *MemoryRejected) Delete(integrationID, eventID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, err := m.without(integrationID, eventID)
	if err != nil {
		return err
	}
	m.events[integrationID] = l
	return nil
}

// without returns the events of integrationID without eventID, in a new
// slice, or ErrNotFound.
func (m *MemoryRejected) without(integrationID, eventID string) ([]RejectedEvent, error) {
	l := m.events[integrationID]
	for i, e := range l {
		if e.EventID == eventID {
			out := make([]RejectedEvent, 0, len(l)-1)
			return append(append(out, l[:i]...), l[i+1:]...), nil
		}
	}
	return nil, ErrNotFound
}

// Drop forgets every rejected event of integrationID.
func (m *MemoryRejected) Drop(integrationID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.events, integrationID)
	return nil
}

func newestFirst(l []RejectedEvent) []RejectedEvent {
	out := make([]RejectedEvent, len(l))
	for i, e := range l {
		out[len(l)-1-i] = e
	}
	return out
}

// FileRejected is a RejectedStore that survives restarts: a MemoryRejected
// mirrored to one JSON file per integration in a directory. Each change is
// synced to disk before it returns, as the event is acknowledged on the
// strength of it.
type FileRejected struct {
	mem        *MemoryRejected // its mutex also orders the file writes
	files      fileDir
	unreadable []error
}

type rejectedFile struct {
	IntegrationID string          `json:"integration_id"`
	Events        []RejectedEvent `json:"rejected_events"` // newest first
}

// OpenFileRejected opens (creating it if needed) the store kept in dir, size
// events per integration (zero means DefaultRejectedSize), and loads it. A
// file holding more events than size keeps them until the next Put, which
// evicts (and so reports) the excess. A file that cannot be decoded is set
// aside (see Unreadable).
func OpenFileRejected(dir string, size int) (*FileRejected, error) {
	files, err := openFileDir(dir, ".rejected.json", true)
	if err != nil {
		return nil, err
	}
	s := &FileRejected{mem: NewMemoryRejected(size), files: files}
	s.unreadable, err = files.load(func(data []byte) error {
		var f rejectedFile
		if err := json.Unmarshal(data, &f); err != nil {
			return err
		}
		s.mem.events[f.IntegrationID] = newestFirst(f.Events) // oldest first
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Unreadable returns the files OpenFileRejected could not decode: each was
// renamed with UnreadableSuffix and left out, so that the store opens.
func (s *FileRejected) Unreadable() []error { return s.unreadable }

// Put stores e durably, replacing an entry with the same event id, and
// returns the entries evicted to make room. Nothing changes when the file
// cannot be written.
func (s *FileRejected) Put(integrationID string, e RejectedEvent) ([]RejectedEvent, error) {
	s.mem.mu.Lock()
	defer s.mem.mu.Unlock()
	l, evicted := s.mem.put(s.mem.events[integrationID], e)
	if err := s.save(integrationID, l); err != nil {
		return nil, err
	}
	s.mem.events[integrationID] = l
	return evicted, nil
}

// List returns the rejected events of integrationID, newest first.
func (s *FileRejected) List(integrationID string) ([]RejectedEvent, error) {
	return s.mem.List(integrationID)
}

// Get returns one rejected event, or ErrNotFound.
func (s *FileRejected) Get(integrationID, eventID string) (RejectedEvent, error) {
	return s.mem.Get(integrationID, eventID)
}

// Delete removes one rejected event durably, or returns ErrNotFound.
func (s *FileRejected) Delete(integrationID, eventID string) error {
	s.mem.mu.Lock()
	defer s.mem.mu.Unlock()
	l, err := s.mem.without(integrationID, eventID)
	if err != nil {
		return err
	}
	if err := s.save(integrationID, l); err != nil {
		return err
	}
	s.mem.events[integrationID] = l
	return nil
}

// Drop forgets every rejected event of integrationID and removes its file.
func (s *FileRejected) Drop(integrationID string) error {
	s.mem.mu.Lock()
	defer s.mem.mu.Unlock()
	if err := s.files.remove(integrationID); err != nil {
		return err
	}
	delete(s.mem.events, integrationID)
	return nil
}

func (s *FileRejected) save(integrationID string, l []RejectedEvent) error {
	return s.files.write(integrationID, rejectedFile{IntegrationID: integrationID, Events: newestFirst(l)})
}
