package replay

import (
	"bytes"
	"maps"
	"sort"
	"sync"
	"time"
)

// Memory is a Storage that keeps everything in memory: for tests and for
// applications that accept losing the journal with the process.
type Memory struct {
	mu      sync.RWMutex
	topics  map[string]*memTopic
	cursors map[CursorKey]Cursor
}

type memTopic struct {
	recs []Record // recs[i].Offset == base+i
	base uint64   // offset of recs[0]
	last time.Time
}

// NewMemory returns an empty in-memory storage.
func NewMemory() *Memory {
	return &Memory{topics: make(map[string]*memTopic), cursors: make(map[CursorKey]Cursor)}
}

func (m *Memory) topic(name string) *memTopic {
	t := m.topics[name]
	if t == nil {
		t = &memTopic{base: 1}
		m.topics[name] = t
	}
	return t
}

// Append implements Storage.
func (m *Memory) Append(topic string, recs []*Record, now func() time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.topic(topic)
	ts := now()
	if ts.Before(t.last) {
		ts = t.last
	}
	t.last = ts
	for _, r := range recs {
		r.Offset = t.base + uint64(len(t.recs))
		r.Time = ts
		kept := *r
		// Copies: a publisher may reuse its buffer once Append returns.
		kept.Payload = bytes.Clone(r.Payload)
		kept.Metadata = maps.Clone(r.Metadata)
		t.recs = append(t.recs, kept)
	}
	return nil
}

// Read implements Storage.
func (m *Memory) Read(topic string, from uint64, max int) ([]Record, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	t := m.topics[topic]
	if t == nil {
		return nil, nil
	}
	if from < t.base {
		from = t.base
	}
	i := int(from - t.base)
	if i >= len(t.recs) {
		return nil, nil
	}
	end := min(i+max, len(t.recs))
	return append([]Record(nil), t.recs[i:end]...), nil
}

// Bounds implements Storage.
func (m *Memory) Bounds(topic string) (first, next uint64) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	t := m.topics[topic]
	if t == nil {
		return 1, 1
	}
	return t.base, t.base + uint64(len(t.recs))
}

// Seek implements Storage.
func (m *Memory) Seek(topic string, at time.Time) (uint64, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	t := m.topics[topic]
	if t == nil {
		return 1, nil
	}
	i := sort.Search(len(t.recs), func(i int) bool { return !t.recs[i].Time.Before(at) })
	return t.base + uint64(i), nil
}

// Trim implements Storage.
func (m *Memory) Trim(before time.Time) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	removed := 0
	for _, t := range m.topics {
		i := sort.Search(len(t.recs), func(i int) bool { return !t.recs[i].Time.Before(before) })
		if i == 0 {
			continue
		}
		t.recs = append([]Record(nil), t.recs[i:]...)
		t.base += uint64(i)
		removed += i
	}
	return removed, nil
}

// Topics implements Storage.
func (m *Memory) Topics() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]string, 0, len(m.topics))
	for n := range m.topics {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Cursors implements Storage.
func (m *Memory) Cursors() (map[CursorKey]Cursor, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make(map[CursorKey]Cursor, len(m.cursors))
	for k, v := range m.cursors {
		out[k] = v.Clone()
	}
	return out, nil
}

// SaveCursors implements Storage.
func (m *Memory) SaveCursors(cursors map[CursorKey]Cursor) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, v := range cursors {
		m.cursors[k] = v.Clone()
	}
	return nil
}

// DeleteCursor implements Storage.
func (m *Memory) DeleteCursor(key CursorKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.cursors, key)
	return nil
}

// Close implements Storage.
func (m *Memory) Close() error { return nil }
