// Package replay holds the journal: the durable, ordered record of every
// event the bus publishes, and what it makes possible — crash recovery,
// catch-up after a stop, replay of a date range.
//
// The Journal is itself a Watermill Pub/Sub. Publish appends; each consumer
// group (one per integration) reads from its own durable cursor, which moves
// only when messages are acknowledged. A replay is a consumer that starts at
// a time instead of a cursor. Storage is pluggable: Memory, bounded in
// bytes, for tests and for applications that can lose the journal with the
// process, and the engines in the packages under replay/ (replay/segments,
// a segment log in a directory, for production).
package replay

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sinkbus/sinkbus/internal/clock"
)

// ErrClosed is returned by a closed Journal.
var ErrClosed = errors.New("sinkbus: journal closed")

// DefaultRetention is how long events are kept when Config.Retention is zero:
// the 30 days in which a stopped integration may still catch up.
const DefaultRetention = 30 * 24 * time.Hour

// Config configures a Journal.
type Config struct {
	// Storage keeps the records. Nil means NewMemory(): in memory, within
	// DefaultMemoryBytes.
	Storage Storage
	// Retention is how long records are kept. Zero means DefaultRetention;
	// negative keeps them forever. A segments.Storage without a
	// MaxSegmentAge of its own seals its segments at Retention/10, so that
	// their files can go (see Retainer).
	Retention time.Duration
	// CompactEvery is how often records past retention are removed, on the
	// wall clock; Open compacts once before it returns. Zero means an hour
	// (or Retention/10 when shorter); negative disables both (call Compact
	// yourself).
	CompactEvery time.Duration
	// CursorFlushEvery bounds how long an acknowledgement may stay unsaved.
	// A crash redelivers what was acknowledged in that window (at-least-once).
	// Zero means 100 ms.
	CursorFlushEvery time.Duration
	// Subscriber configures Subscribe, the plain Watermill side of the
	// journal. Its zero value is a durable group "default" that starts at
	// the oldest record.
	Subscriber ConsumerConfig
	// Clock is the time source; nil means the wall clock.
	Clock clock.Clock
	// Logger; nil means watermill.NopLogger{}.
	Logger watermill.LoggerAdapter
}

func (c *Config) setDefaults() {
	if c.Storage == nil {
		c.Storage = NewMemory()
	}
	if c.Retention == 0 {
		c.Retention = DefaultRetention
	}
	if c.CompactEvery == 0 {
		c.CompactEvery = time.Hour
		if c.Retention > 0 && c.Retention/10 < c.CompactEvery {
			c.CompactEvery = c.Retention / 10
		}
	}
	if c.CursorFlushEvery <= 0 {
		c.CursorFlushEvery = 100 * time.Millisecond
	}
	if c.Subscriber.Group == "" {
		c.Subscriber.Group = "default"
		c.Subscriber.FromOldest = true
	}
	c.Clock = clock.OrReal(c.Clock)
	if c.Logger == nil {
		c.Logger = watermill.NopLogger{}
	}
}

// Journal is a durable, ordered log of messages per topic that is also a
// Watermill Pub/Sub. Safe for concurrent use.
type Journal struct {
	cfg Config
	st  Storage

	// flushMu orders every write of cursors to the storage: a save holds it
	// from its snapshot to its end, so an older snapshot cannot land after a
	// newer one, nor after a DeleteCursor. Taken before mu.
	flushMu sync.Mutex

	mu        sync.Mutex
	notify    map[string]chan struct{} // closed and replaced on every append to the topic
	heads     heads                    // readers with a Select waiting for appends
	appending map[*appending]struct{}
	// cursors are the groups' cursors as last saved or set; a group being
	// read has its reader in live, which holds the newer one.
	cursors  map[CursorKey]Cursor
	live     map[CursorKey]*reader
	dirty    atomic.Bool // a cursor changed since the last save
	closed   bool
	closing  chan struct{}
	ctx      context.Context // cancelled by Close: ends every consumer
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	subsOnce sync.Once
	subs     *Consumer
}

// Open starts a journal on cfg.Storage.
func Open(cfg Config) (*Journal, error) {
	cfg.setDefaults()
	if r, ok := cfg.Storage.(Retainer); ok {
		r.RetainFor(cfg.Retention)
	}
	cursors, err := cfg.Storage.Cursors()
	if err != nil {
		return nil, err
	}
	j := &Journal{
		cfg:       cfg,
		st:        cfg.Storage,
		notify:    make(map[string]chan struct{}),
		appending: make(map[*appending]struct{}),
		cursors:   cursors,
		live:      make(map[CursorKey]*reader),
		closing:   make(chan struct{}),
	}
	j.ctx, j.cancel = context.WithCancel(context.Background())
	if w, ok := cfg.Storage.(AppendWatcher); ok {
		w.WatchAppends(j.wakeReaders)
	}
	j.wg.Add(1)
	go j.flushLoop()
	if cfg.Retention > 0 && cfg.CompactEvery > 0 {
		// What expired while the process was down goes before any consumer
		// can read it.
		j.compactAndLog()
		j.wg.Add(1)
		go j.compactLoop()
	}
	return j, nil
}

// Storage returns the storage the journal writes to.
func (j *Journal) Storage() Storage { return j.st }

// Publish appends msgs to topic, in order, and returns once they are as
// durable as the storage promises. It never waits for a consumer.
func (j *Journal) Publish(topic string, msgs ...*message.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	recs := make([]*Record, len(msgs))
	backing := make([]Record, len(msgs))
	for i, m := range msgs {
		md := make(map[string]string, len(m.Metadata))
		for k, v := range m.Metadata {
			md[k] = v
		}
		backing[i] = Record{UUID: m.UUID, Metadata: md, Payload: m.Payload}
		recs[i] = &backing[i]
	}
	return j.Append(topic, recs...)
}

// Append is Publish for callers that already hold records: the journal takes
// them as they are (it keeps their metadata maps and payloads, which the
// caller must not change afterwards) and sets their Offset and Time.
func (j *Journal) Append(topic string, recs ...*Record) error {
	if len(recs) == 0 {
		return nil
	}
	a := appendings.Get().(*appending)
	defer appendings.Put(a)
	a.topic, a.clock = topic, j.cfg.Clock
	a.nanos.Store(notAsked)
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return ErrClosed
	}
	j.appending[a] = struct{}{}
	j.mu.Unlock()
	err := j.st.Append(topic, recs, a.now)
	j.mu.Lock()
	delete(j.appending, a)
	j.mu.Unlock()
	// Woken readers look again, also after a failure: one may wait for
	// this append to settle (see mayAppendBy).
	j.wake(topic)
	if err != nil {
		recs = nil // wake every head reader
	}
	j.heads.appended(topic, recs)
	return err
}

// wakeReaders wakes the readers waiting for records of topic.
func (j *Journal) wakeReaders(topic string) {
	j.wake(topic)
	j.heads.appended(topic, nil)
}

// wake wakes the readers without a Select waiting for records of topic.
func (j *Journal) wake(topic string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if ch, ok := j.notify[topic]; ok {
		close(ch)
		delete(j.notify, topic)
	}
}

// CheckAppend returns why an Append to topic would fail now, without
// appending: ErrClosed once the journal is closed, else what the storage
// says when it is an AppendChecker (nil when it is not one).
func (j *Journal) CheckAppend(topic string) error {
	j.mu.Lock()
	closed := j.closed
	j.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if c, ok := j.st.(AppendChecker); ok {
		return c.CheckAppend(topic)
	}
	return nil
}

// appendings recycles the appending of each Append: it is gone from
// Journal.appending when Append returns, and the storage calls its now only
// within Append. Its now is made once, not once per Append.
var appendings = sync.Pool{New: func() any {
	a := new(appending)
	a.now = a.stamp
	return a
}}

// appending is an Append under way, and the time the storage took for it.
type appending struct {
	topic string
	nanos atomic.Int64 // notAsked, asking, or the time in Unix nanoseconds
	clock clock.Clock
	now   func() time.Time // a.stamp, the now the storage is given
}

// stamp is the time of the records of the Append, noted in a.nanos.
func (a *appending) stamp() time.Time {
	a.nanos.CompareAndSwap(notAsked, asking)
	now := a.clock.Now()
	a.nanos.CompareAndSwap(asking, now.UnixNano())
	return now
}

const (
	notAsked = math.MinInt64
	asking   = math.MinInt64 + 1
)

// mayAppendBy reports whether an Append under way may still add a record
// of topic stamped at or before t. A consumer ending at t must wait for it:
// the clock passing t does not mean every record up to t is readable yet (an
// fsync may be under way). An append that has not asked the time yet gets a
// later one.
func (j *Journal) mayAppendBy(topic string, t time.Time) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	for a := range j.appending {
		if a.topic != topic {
			continue
		}
		if n := a.nanos.Load(); n == asking || n != notAsked && n <= t.UnixNano() {
			return true
		}
	}
	return false
}

// appended returns a channel closed at the next append to topic.
func (j *Journal) appended(topic string) <-chan struct{} {
	j.mu.Lock()
	defer j.mu.Unlock()
	ch, ok := j.notify[topic]
	if !ok {
		ch = make(chan struct{})
		j.notify[topic] = ch
	}
	return ch
}

// Subscribe implements message.Subscriber with Config.Subscriber.
func (j *Journal) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	j.subsOnce.Do(func() { j.subs = j.Consumer(j.cfg.Subscriber) })
	return j.subs.Subscribe(ctx, topic)
}

// Head returns the offset the next record of topic will get.
func (j *Journal) Head(topic string) uint64 {
	_, next := j.st.Bounds(topic)
	return next
}

// Cursor returns a group's cursor in topic: the first offset it has not
// acknowledged, and the offsets it has acknowledged above it. ok is false
// when the group has none.
func (j *Journal) Cursor(topic, group string) (c Cursor, ok bool) {
	k := CursorKey{topic, group}
	j.mu.Lock()
	r := j.live[k]
	c, ok = j.cursors[k]
	j.mu.Unlock()
	if r != nil {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.cursor(), true
	}
	return c.Clone(), ok
}

// Lag returns how many records of topic the group has not acknowledged yet:
// from its watermark to the head, less what it acknowledged above the
// watermark (an event retrying for hours does not count the ones delivered
// after it).
func (j *Journal) Lag(topic, group string) uint64 {
	first, next := j.st.Bounds(topic)
	k := CursorKey{topic, group}
	j.mu.Lock()
	r := j.live[k]
	c, ok := j.cursors[k]
	j.mu.Unlock()
	switch {
	case r != nil:
		return r.undelivered(first, next)
	case ok:
		return c.Undelivered(first, next)
	}
	return 0
}

// DeleteCursor forgets a group's cursor, as when its integration is deleted.
// A reader of the group still running saves no cursor afterwards. When the
// storage cannot delete it, the cursor stays, so that a second call can.
func (j *Journal) DeleteCursor(topic, group string) error {
	k := CursorKey{topic, group}
	j.flushMu.Lock()
	defer j.flushMu.Unlock()
	if err := j.st.DeleteCursor(k); err != nil {
		return err
	}
	j.mu.Lock()
	delete(j.cursors, k)
	delete(j.live, k)
	j.mu.Unlock()
	return nil
}

// SetCursor moves a group's cursor, durably: the group's next consumer
// starts at offset, with nothing acknowledged above it. It is how a stopped
// integration skips or rewinds. When the cursor cannot be saved, it stays
// as it was.
func (j *Journal) SetCursor(topic, group string, offset uint64) error {
	k := CursorKey{topic, group}
	c := Cursor{Next: offset}
	j.flushMu.Lock()
	defer j.flushMu.Unlock()
	if err := j.st.SaveCursors(map[CursorKey]Cursor{k: c}); err != nil {
		return err
	}
	j.mu.Lock()
	j.cursors[k] = c
	j.mu.Unlock()
	return nil
}

// ReloadCursor reads a group's cursor from a storage that other processes
// share (a CursorLoader), so that a consumer started next begins where the
// process that read the group before left it. A group read here now, or a
// storage of this process alone, is left as it is.
func (j *Journal) ReloadCursor(topic, group string) error {
	l, ok := j.st.(CursorLoader)
	if !ok {
		return nil
	}
	k := CursorKey{topic, group}
	j.flushMu.Lock()
	defer j.flushMu.Unlock()
	c, found, err := l.LoadCursor(k)
	if err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.live[k] != nil {
		return nil
	}
	if found {
		j.cursors[k] = c
	} else {
		delete(j.cursors, k)
	}
	return nil
}

// Scan calls fn for each record of topic appended in [from, to), in order,
// until fn returns false. It reads in batches: memory stays bounded.
func (j *Journal) Scan(ctx context.Context, topic string, from, to time.Time, fn func(Record) bool) error {
	pos, err := j.st.Seek(topic, from)
	if err != nil {
		return err
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		recs, err := j.st.Read(topic, pos, 512)
		if err != nil || len(recs) == 0 {
			return err
		}
		for _, r := range recs {
			if !to.IsZero() && !r.Time.Before(to) {
				return nil
			}
			if !fn(r) {
				return nil
			}
			pos = r.Offset + 1
		}
	}
}

// Compact removes records older than the retention window and returns how
// many it removed.
func (j *Journal) Compact() (int, error) {
	if j.cfg.Retention < 0 {
		return 0, nil
	}
	return j.st.Trim(j.cfg.Clock.Now().Add(-j.cfg.Retention))
}

// Flush saves the cursors now. Concurrent calls save one after the other,
// each a snapshot taken in its turn: the saved cursors never go back.
func (j *Journal) Flush() error {
	j.flushMu.Lock()
	defer j.flushMu.Unlock()
	if !j.dirty.Swap(false) {
		return nil
	}
	j.mu.Lock()
	// Stored cursors are replaced, never changed in place: a shallow copy
	// is a snapshot.
	snapshot := make(map[CursorKey]Cursor, len(j.cursors))
	for k, v := range j.cursors {
		snapshot[k] = v
	}
	live := make([]*reader, 0, len(j.live))
	for _, r := range j.live {
		live = append(live, r)
	}
	j.mu.Unlock()
	for _, r := range live {
		r.mu.Lock()
		snapshot[r.key] = r.cursor()
		r.mu.Unlock()
	}
	if err := j.st.SaveCursors(snapshot); err != nil {
		if !errors.Is(err, ErrFenced) { // a fenced cursor is not tried again
			j.dirty.Store(true)
		}
		return err
	}
	return nil
}

// track makes r the reader of its group: its cursor is saved from now on,
// starting with where it starts.
func (j *Journal) track(r *reader) {
	j.mu.Lock()
	j.live[r.key] = r
	j.mu.Unlock()
	j.dirty.Store(true)
}

// untrack keeps the cursor r ended with, unless another reader of the group
// took over (or the cursor was deleted) meanwhile.
func (j *Journal) untrack(r *reader) {
	if r.c.cfg.Group == "" {
		return
	}
	r.mu.Lock()
	c := r.cursor()
	r.mu.Unlock()
	j.mu.Lock()
	if j.live[r.key] == r {
		delete(j.live, r.key)
		j.cursors[r.key] = c
		j.dirty.Store(true)
	}
	j.mu.Unlock()
}

// cursorsChanged says a reader acknowledged something: the next flush saves.
func (j *Journal) cursorsChanged() { j.dirty.Store(true) }

// flushLoop saves cursors on a wall-clock ticker: durability of
// acknowledgements is about real time, whatever clock the journal runs on.
func (j *Journal) flushLoop() {
	defer j.wg.Done()
	t := time.NewTicker(j.cfg.CursorFlushEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if err := j.Flush(); err != nil {
				j.cfg.Logger.Error("Cannot save journal cursors", err, nil)
			}
		case <-j.closing:
			return
		}
	}
}

// compactLoop runs on a wall-clock ticker: it is housekeeping, and a test's
// fake clock should only see the timers that decide behaviour. The cut-off
// itself comes from the journal's clock.
func (j *Journal) compactLoop() {
	defer j.wg.Done()
	t := time.NewTicker(j.cfg.CompactEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			j.compactAndLog()
		case <-j.closing:
			return
		}
	}
}

func (j *Journal) compactAndLog() {
	n, err := j.Compact()
	if err != nil {
		j.cfg.Logger.Error("Journal compaction failed", err, nil)
	}
	if n > 0 {
		j.cfg.Logger.Info("Journal compacted", watermill.LogFields{"removed": n, "retention": j.cfg.Retention.String()})
	}
}

// Close stops every consumer, saves the cursors and closes the storage.
// It is idempotent.
func (j *Journal) Close() error {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return nil
	}
	j.closed = true
	close(j.closing)
	j.cancel()
	j.mu.Unlock()
	j.wg.Wait()
	return errors.Join(j.Flush(), j.st.Close())
}
