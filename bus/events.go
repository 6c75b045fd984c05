package bus

import (
	"context"
	"time"

	"github.com/sinkbus/sinkbus/replay"
)

// Events is a read-only view of the bus's journal: the events it keeps and
// how far each integration has read them. It is the application's: it
// holds every tenant's events. Where an integration reads is
// the bus's business (Start catches up, Replay delivers again, Delete
// forgets), so the view cannot move a cursor.
type Events struct {
	j *replay.Journal
	b *Bus
}

// Events returns the read-only view of the bus's journal.
func (b *Bus) Events() *Events { return &Events{j: b.journal, b: b} }

// Head returns the offset the next published event will get. Offsets are
// dense, from 1, one per event.
func (e *Events) Head() uint64 { return e.j.Head(Topic) }

// Bounds returns the offset of the oldest event retention keeps, and Head
// (first == next when the journal holds no event).
func (e *Events) Bounds() (first, next uint64) { return e.j.Storage().Bounds(Topic) }

// Cursor returns the first offset the integration of ref id
// (Integration.Ref) has not acknowledged; ok is false when it has no cursor
// (it never existed, or was deleted).
func (e *Events) Cursor(id string) (offset uint64, ok bool) {
	e.b.freshRef(id)
	c, ok := e.j.Cursor(Topic, id)
	return c.Next, ok
}

// Lag returns how many events the integration of ref id has not settled
// yet, every tenant's counted: zero when it has no cursor.
func (e *Events) Lag(id string) uint64 {
	e.b.freshRef(id)
	return e.j.Lag(Topic, id)
}

// Scan calls fn for each event appended in [from, to), in order, until fn
// returns false or ctx ends; a zero from or to leaves that end open. A
// record's Time is when the journal appended it; its metadata holds the
// event's name and tenant (sinks.MetaName, sinks.MetaTenant). It reads in
// batches: memory stays bounded.
func (e *Events) Scan(ctx context.Context, from, to time.Time, fn func(replay.Record) bool) error {
	return e.j.Scan(ctx, Topic, from, to, fn)
}
