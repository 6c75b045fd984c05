package replay

import (
	"bytes"
	"sort"
	"sync"
	"time"
	"unsafe"
)

// DefaultMemoryBytes is how many bytes an in-memory journal holds when
// MemoryConfig.MaxBytes is zero: about 45,000 events of 1 KiB.
const DefaultMemoryBytes = 64 << 20

// MemoryConfig configures a Memory storage.
type MemoryConfig struct {
	// MaxBytes bounds what the storage holds, counted as the heap its
	// records take (payload, metadata and bookkeeping, estimated on the high
	// side). When an append goes over it, records that every consumer group
	// has acknowledged (by the cursors last saved) go first, oldest first;
	// when that is not enough, the oldest records go, acknowledged or not,
	// and each group learns how many it lost when it reaches the gap
	// (ConsumerConfig.OnRetentionLoss). The newest record of each topic
	// always stays. Zero means DefaultMemoryBytes; negative means no bound:
	// only the journal's Retention removes records.
	MaxBytes int64
}

func (c *MemoryConfig) setDefaults() {
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMemoryBytes
	}
}

// Memory is a Storage that keeps everything in memory, within a bound in
// bytes: for tests, and for applications that accept losing the journal
// with the process. Read hands out copies: what a reader does to a record
// never reaches the storage.
type Memory struct {
	max int64 // no bound when negative

	mu      sync.RWMutex
	topics  map[string]*memTopic
	cursors map[CursorKey]Cursor
	size    int64 // recordBytes of every record held, all topics
}

type memTopic struct {
	// recs[head:] are the records held, in offset order. Offsets may skip
	// records removed to keep the bound.
	recs []memRecord
	head int
	next uint64 // offset of the next record appended
	last time.Time
	// reclaim lists the offsets every group of the topic has acknowledged,
	// by the cursors last saved, oldest first: the records that go first
	// when the bound needs room. Empty when the topic has no group.
	reclaim []Range
}

// NewMemory returns an empty in-memory storage bounded by
// DefaultMemoryBytes.
func NewMemory() *Memory { return NewMemoryWith(MemoryConfig{}) }

// NewMemoryWith returns an empty in-memory storage configured by cfg.
func NewMemoryWith(cfg MemoryConfig) *Memory {
	cfg.setDefaults()
	return &Memory{max: cfg.MaxBytes, topics: make(map[string]*memTopic), cursors: make(map[CursorKey]Cursor)}
}

// MaxBytes returns the storage's bound; negative means none.
func (m *Memory) MaxBytes() int64 { return m.max }

// Size returns how many bytes the storage holds, as counted against
// MemoryConfig.MaxBytes.
func (m *Memory) Size() int64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.size
}

func (m *Memory) topic(name string) *memTopic {
	t := m.topics[name]
	if t == nil {
		t = &memTopic{next: 1}
		m.topics[name] = t
	}
	return t
}

// Append implements Storage. When the records take the storage over its
// bound, it makes room at once, in time proportional to what it removes
// (plus, when acknowledged records must go from between unacknowledged
// ones, one pass over the topic for every eighth of the bound appended).
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
		r.Offset = t.next
		r.Time = ts
		t.next++
		// Copies: a publisher may reuse its buffer once Append returns.
		t.recs = append(t.recs, newMemRecord(r))
		m.size += t.recs[len(t.recs)-1].bytes()
	}
	if m.max >= 0 && m.size > m.max {
		m.makeRoom(t)
	}
	return nil
}

// makeRoom brings the storage back within its bound after an append to t:
// acknowledged records first (t's, then the other topics'), down to an
// eighth below the bound so that the next appends do not each pay for a
// pass; then the oldest records, t's first, only as many as needed.
func (m *Memory) makeRoom(t *memTopic) {
	target := m.max - m.max/8
	m.reclaim(t, target)
	if m.size > m.max {
		for _, o := range m.topics {
			if o != t {
				m.reclaim(o, target)
			}
		}
	}
	for m.size > m.max && t.held() > 1 {
		m.dropOldest(t)
	}
	for _, o := range m.topics {
		for m.size > m.max && o.held() > 1 {
			m.dropOldest(o)
		}
	}
}

func (t *memTopic) held() int { return len(t.recs) - t.head }

// dropOldest removes t's oldest record.
func (m *Memory) dropOldest(t *memTopic) {
	m.size -= t.recs[t.head].bytes()
	t.recs[t.head] = memRecord{}
	t.head++
	if t.head >= 64 && t.head >= len(t.recs)/2 {
		n := copy(t.recs, t.recs[t.head:])
		clear(t.recs[n:])
		t.recs = t.recs[:n]
		t.head = 0
	}
}

// reclaim removes t's acknowledged records, oldest first, until the storage
// holds target bytes or none is left; never t's newest record.
func (m *Memory) reclaim(t *memTopic, target int64) {
	// The acknowledged records at the front go without moving the others.
	for m.size > target && len(t.reclaim) > 0 && t.held() > 1 {
		off := t.recs[t.head].Offset
		for len(t.reclaim) > 0 && t.reclaim[0].To <= off {
			t.reclaim = t.reclaim[1:]
		}
		if len(t.reclaim) == 0 || t.reclaim[0].From > off {
			break
		}
		m.dropOldest(t)
	}
	if m.size <= target || len(t.reclaim) == 0 {
		return
	}
	// Those between unacknowledged ones: one pass that closes the gaps.
	newest := len(t.recs) - 1
	k := t.index(t.reclaim[0].From)
	w, ri := k, 0
	for ; k < newest && m.size > target; k++ {
		rec := &t.recs[k]
		for ri < len(t.reclaim) && t.reclaim[ri].To <= rec.Offset {
			ri++
		}
		if ri == len(t.reclaim) {
			break
		}
		if t.reclaim[ri].From <= rec.Offset {
			m.size -= rec.bytes()
			continue
		}
		t.recs[w] = *rec
		w++
	}
	// The ranges the pass did not reach are for the next one.
	if k < len(t.recs) {
		stop := t.recs[k].Offset
		for ri < len(t.reclaim) && t.reclaim[ri].To <= stop {
			ri++
		}
		t.reclaim = t.reclaim[ri:]
		if len(t.reclaim) > 0 {
			t.reclaim[0].From = max(t.reclaim[0].From, stop)
		}
	} else {
		t.reclaim = nil
	}
	n := w + copy(t.recs[w:], t.recs[k:])
	clear(t.recs[n:])
	t.recs = t.recs[:n]
}

// index returns the position in t.recs of the first record held at or
// after offset.
func (t *memTopic) index(offset uint64) int {
	held := t.recs[t.head:]
	return t.head + sort.Search(len(held), func(i int) bool { return held[i].Offset >= offset })
}

// Read implements Storage. The records are copies: they share no memory
// with the storage.
func (m *Memory) Read(topic string, from uint64, max int) ([]Record, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	t := m.topics[topic]
	if t == nil || max <= 0 {
		return nil, nil
	}
	i := t.index(from)
	if i == len(t.recs) {
		return nil, nil
	}
	held := t.recs[i:min(i+max, len(t.recs))]
	out := make([]Record, len(held))
	for j := range held {
		out[j] = held[j].record()
	}
	return out, nil
}

// View implements Viewer.
func (m *Memory) View(topic string, from uint64, max int, fn func(RecordView)) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	t := m.topics[topic]
	if t == nil || max <= 0 {
		return nil
	}
	i := t.index(from)
	for j := i; j < min(i+max, len(t.recs)); j++ {
		fn(memView{&t.recs[j]})
	}
	return nil
}

// memView shows a held record in place.
type memView struct{ r *memRecord }

func (v memView) Offset() uint64  { return v.r.Offset }
func (v memView) Time() time.Time { return v.r.Time }
func (v memView) Data() []byte    { return v.r.payload }
func (v memView) Record() Record  { return v.r.record() }

func (v memView) Meta(key string) string {
	for i := 0; i+1 < len(v.r.meta); i += 2 {
		if v.r.meta[i] == key {
			return v.r.meta[i+1]
		}
	}
	return ""
}

// Bounds implements Storage. Offsets between first and next may be missing:
// records removed to keep the bound.
func (m *Memory) Bounds(topic string) (first, next uint64) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	t := m.topics[topic]
	if t == nil {
		return 1, 1
	}
	return t.first(), t.next
}

// first is the offset of t's oldest record held, or next when it holds none.
func (t *memTopic) first() uint64 {
	if t.held() == 0 {
		return t.next
	}
	return t.recs[t.head].Offset
}

// Seek implements Storage.
func (m *Memory) Seek(topic string, at time.Time) (uint64, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	t := m.topics[topic]
	if t == nil {
		return 1, nil
	}
	held := t.recs[t.head:]
	i := sort.Search(len(held), func(i int) bool { return !held[i].Time.Before(at) })
	if i == len(held) {
		return t.next, nil
	}
	return held[i].Offset, nil
}

// Trim implements Storage.
func (m *Memory) Trim(before time.Time) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	removed := 0
	for _, t := range m.topics {
		for t.held() > 0 && t.recs[t.head].Time.Before(before) {
			m.dropOldest(t)
			removed++
		}
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

// SaveCursors implements Storage. The cursors say which records every group
// has acknowledged: those go first when the bound needs room.
func (m *Memory) SaveCursors(cursors map[CursorKey]Cursor) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	changed := make(map[string]bool)
	for k, v := range cursors {
		m.cursors[k] = v.Clone()
		changed[k.Topic] = true
	}
	for topic := range changed {
		m.findReclaimable(topic)
	}
	return nil
}

// DeleteCursor implements Storage.
func (m *Memory) DeleteCursor(key CursorKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.cursors, key)
	m.findReclaimable(key.Topic)
	return nil
}

// findReclaimable sets the reclaim list of topic from its groups' cursors:
// the offsets they have all acknowledged, among the records still held.
func (m *Memory) findReclaimable(topic string) {
	t := m.topics[topic]
	if t == nil {
		return
	}
	var acked []Range
	groups := 0
	for k, c := range m.cursors {
		if k.Topic != topic {
			continue
		}
		if groups++; groups == 1 {
			acked = c.doneRanges()
		} else {
			acked = intersectRanges(acked, c.doneRanges())
		}
	}
	t.reclaim = t.reclaim[:0]
	for _, r := range acked {
		// Only ranges that still hold a record: a pass never walks ranges
		// already reclaimed.
		if i := t.index(r.From); i < len(t.recs) && t.recs[i].Offset < r.To {
			t.reclaim = append(t.reclaim, r)
		}
	}
}

// Close implements Storage.
func (m *Memory) Close() error { return nil }

// memRecord is a record as Memory holds it: the metadata as key, value
// pairs in one slice, a third of a map's heap.
type memRecord struct {
	Offset  uint64
	Time    time.Time
	UUID    string
	meta    []string // key, value, key, value...
	payload []byte
}

// newMemRecord copies what r holds that its publisher may reuse (the payload
// and the metadata map; strings cannot change).
func newMemRecord(r *Record) memRecord {
	kept := memRecord{Offset: r.Offset, Time: r.Time, UUID: r.UUID, payload: bytes.Clone(r.Payload)}
	if r.Metadata != nil {
		kept.meta = make([]string, 0, 2*len(r.Metadata))
		for k, v := range r.Metadata {
			kept.meta = append(kept.meta, k, v)
		}
	}
	return kept
}

// record returns a copy of r that shares nothing with it.
func (r *memRecord) record() Record {
	out := Record{Offset: r.Offset, Time: r.Time, UUID: r.UUID, Payload: bytes.Clone(r.payload)}
	if r.meta != nil {
		out.Metadata = make(map[string]string, len(r.meta)/2)
		for i := 0; i < len(r.meta); i += 2 {
			out.Metadata[r.meta[i]] = r.meta[i+1]
		}
	}
	return out
}

// memRecordSlot is what a memRecord takes in the topic's slice, which may
// have twice the room it uses (it grows by doubling).
const memRecordSlot = 2 * int(unsafe.Sizeof(memRecord{}))

// bytes estimates the heap r takes. It errs on the high side: the strings
// are counted although the publisher may share them.
func (r *memRecord) bytes() int64 {
	n := memRecordSlot + cap(r.payload) + len(r.UUID) + 16*cap(r.meta)
	for _, s := range r.meta {
		n += len(s)
	}
	return int64(n)
}
