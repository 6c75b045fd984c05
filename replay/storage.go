package replay

import (
	"errors"
	"time"
)

// Record is one journal entry: a Watermill message with its position.
type Record struct {
	// Offset is the record's position in its topic: dense, starting at 1.
	Offset uint64
	// Time is when the journal appended it; never decreases within a topic.
	Time     time.Time
	UUID     string
	Metadata map[string]string
	Payload  []byte
}

// CursorKey names one consumer group's cursor in one topic.
type CursorKey struct {
	Topic string
	Group string
}

// Storage is where a Journal keeps its records and cursors. The journal
// itself (subscribers, acknowledgements, ordering, retention schedule) is the
// same for every storage; Storage only stores. Implementations are safe for
// concurrent use.
type Storage interface {
	// Append stores recs at the end of topic, assigning each its Offset and
	// its Time (from now(), clamped so it never decreases), and returns once
	// they are as durable as the storage promises. Concurrent callers may
	// share one sync (group commit). It keeps no reference to the records'
	// payloads or metadata: the caller may reuse them once it returns.
	Append(topic string, recs []*Record, now func() time.Time) error
	// Read returns up to max records of topic with Offset >= from, in order.
	// Records trimmed away are skipped silently; the caller compares with
	// Bounds to know how many were lost. The records share no memory with
	// the storage: a caller may change them (a handler editing a payload in
	// place) without changing what the storage holds.
	Read(topic string, from uint64, max int) ([]Record, error)
	// Bounds returns the first retained offset and the next offset to be
	// assigned in topic (first == next when the topic holds nothing).
	Bounds(topic string) (first, next uint64)
	// Seek returns the offset of the first record of topic whose Time is at
	// or after t (the next offset when there is none).
	Seek(topic string, t time.Time) (uint64, error)
	// Trim removes records appended before t and returns how many it removed:
	// from then on Read, Seek and Bounds behave as if they had never been
	// there, also after a reopen (the disk space may come back later). It
	// must not hold up Append for longer than a file deletion.
	Trim(before time.Time) (int, error)
	// Topics returns every topic that holds or held records.
	Topics() []string

	// Cursors returns every saved cursor.
	Cursors() (map[CursorKey]Cursor, error)
	// SaveCursors stores cursors durably (all or nothing); the others stay
	// as they are. The storage keeps no reference to the cursors' ranges.
	SaveCursors(cursors map[CursorKey]Cursor) error
	// DeleteCursor forgets a group's cursor.
	DeleteCursor(key CursorKey) error

	Close() error
}

// Retainer is implemented by a Storage whose housekeeping depends on the
// journal's retention: segments.Storage seals its segment files at a tenth
// of it, so that retention can delete them. Open calls RetainFor before
// anything else.
type Retainer interface {
	RetainFor(retention time.Duration)
}

// AppendWatcher is a Storage that other processes append to as well (a
// database the replicas of an application share). The journal hands it a
// function that wakes its readers of a topic; the storage calls it when
// records that did not come through this journal's Append can be read.
type AppendWatcher interface {
	WatchAppends(wake func(topic string))
}

// AppendChecker is implemented by a Storage that can tell, without
// appending, whether an append to topic would be accepted now: a segment
// log refuses appends after a write failure until it is reopened, a
// database storage cannot reach its server. Journal.CheckAppend asks it;
// health checks (bus readiness) report the answer.
type AppendChecker interface {
	// CheckAppend returns why an append to topic would fail now, or nil.
	// It must be quick and must not append.
	CheckAppend(topic string) error
}

// Viewer is implemented by a Storage that can show its records in place,
// so that a consumer's Select decides before anything is copied: each of
// many integrations reading every event copies only those it observes.
// For a storage that is not a Viewer, the consumer reads whole records and
// selects among them.
type Viewer interface {
	// View calls fn with the records Read(topic, from, max) would return,
	// in order, without copying them. fn must not keep the view, change
	// what it returns, nor call the storage; the storage may hold a lock
	// meanwhile. It shows fewer than max records only when it showed the
	// last one held at the time: consumers take that as the head.
	View(topic string, from uint64, max int, fn func(RecordView)) error
}

// RecordView is a stored record as Viewer.View shows it: valid only during
// the call.
type RecordView interface {
	Offset() uint64
	Time() time.Time
	// Meta returns a metadata value ("" when absent).
	Meta(key string) string
	// Data returns the payload, which must not be changed or kept.
	Data() []byte
	// Record returns a copy that shares nothing with the storage.
	Record() Record
}

// recordView shows a Record that was read already. A struct of one
// pointer: it goes into a RecordView without an allocation.
type recordView struct{ r *Record }

func (v recordView) Offset() uint64         { return v.r.Offset }
func (v recordView) Time() time.Time        { return v.r.Time }
func (v recordView) Meta(key string) string { return v.r.Metadata[key] }
func (v recordView) Data() []byte           { return v.r.Payload }
func (v recordView) Record() Record         { return *v.r }

// ErrFenced is matched by the error of SaveCursors when the storage refused
// some cursors because this process no longer holds their group's lease
// (another process delivers the group now); the others were saved. A
// refused cursor is not retried until it changes.
var ErrFenced = errors.New("sinkbus: cursor not saved: the group's lease is lost")

// CursorLoader is a Storage that several processes share, where a group's
// cursor may have moved since Cursors read it: LoadCursor reads it as saved
// now. Journal.ReloadCursor uses it before a group is read here again.
type CursorLoader interface {
	LoadCursor(key CursorKey) (c Cursor, ok bool, err error)
}
