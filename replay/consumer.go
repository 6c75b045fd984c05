package replay

import (
	"context"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/cenkalti/backoff/v4"

	"github.com/sinkbus/sinkbus/internal/stopping"
)

// ConsumerConfig says where a consumer starts, where it ends, and how many
// messages it has in flight.
type ConsumerConfig struct {
	// Group names the durable cursor. A group that has a cursor resumes from
	// it; acknowledgements move it. Empty means an ephemeral consumer with no
	// cursor (a replay).
	Group string
	// StartAt is where a consumer without a cursor starts: the first record
	// appended at or after it. Zero means the head (only new records), or
	// the oldest retained record when FromOldest is set.
	StartAt    time.Time
	FromOldest bool
	// Until ends the consumer after the last record appended before or at
	// it has been acknowledged: the channel closes and OnEnd is called.
	// Zero means never.
	Until time.Time
	// UntilOffset, when not zero, ends the consumer in the same way after
	// the records before this offset: a range fixed by what was appended
	// when it was asked for, whatever the clock says (a fake one stands
	// still).
	UntilOffset uint64
	// MaxInFlight is how many messages may wait for acknowledgement at once.
	// Zero means 1: strictly one after the other.
	MaxInFlight int
	// OrderKey, when set, keeps messages with the same non-empty key in order:
	// one in flight per key. Messages of other keys pass a busy key by.
	OrderKey func(*message.Message) string
	// MaxPending bounds how many read messages may wait behind busy keys
	// before reading pauses. Zero means 10,000.
	MaxPending int
	// NackDelay is how long a nacked message waits before it is delivered
	// again. Zero means one second. While MaxInFlight nacked messages wait,
	// no new record is read: a consumer whose messages all fail pauses
	// rather than take its backlog into memory.
	NackDelay time.Duration
	// StopGrace is how long messages already sent may still be answered
	// once the subscription's context is done: their contexts stay alive
	// that long, so an attempt under way can finish and be acknowledged
	// rather than delivered again. Waits that honour the stop signal (the
	// delivery middleware's) end at once. Closing the consumer or the
	// journal ends the grace. Zero means none.
	StopGrace time.Duration
	// Decorate, when set, is called on each message before it is sent.
	Decorate func(*message.Message)
	// OnEnd is called once when Until or UntilOffset is reached.
	OnEnd func()
	// OnRetentionLoss is called, with how many records were lost, when a
	// group's cursor points before the oldest retained record: at start,
	// or while the group is running behind. It may be called with the
	// reader's lock held: it must not call back into the consumer.
	OnRetentionLoss func(lost uint64)
}

func (c *ConsumerConfig) setDefaults() {
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 1
	}
	if c.MaxPending <= 0 {
		c.MaxPending = 10000
	}
	if c.NackDelay <= 0 {
		c.NackDelay = time.Second
	}
}

// Consumer is a message.Subscriber reading a topic of the journal for one
// group.
type Consumer struct {
	j   *Journal
	cfg ConsumerConfig

	mu     sync.Mutex
	closed bool
	cancel []context.CancelFunc // subscriptions and their graces
	wg     sync.WaitGroup
}

// Consumer returns a subscriber for cfg. Each Subscribe call runs one reader.
func (j *Journal) Consumer(cfg ConsumerConfig) *Consumer {
	cfg.setDefaults()
	return &Consumer{j: j, cfg: cfg}
}

// Subscribe starts reading topic and returns the messages. The channel closes
// when ctx is done, the consumer or journal is closed, or Until is reached.
func (c *Consumer) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	ctx, cancel := context.WithCancel(ctx)
	// Messages get a context of their own that outlives ctx by the grace.
	msgCtx, endGrace := context.WithCancel(stopping.With(context.WithoutCancel(ctx), ctx.Done()))
	stopGrace := context.AfterFunc(ctx, func() {
		if c.cfg.StopGrace <= 0 {
			endGrace()
			return
		}
		time.AfterFunc(c.cfg.StopGrace, endGrace) // a real-time bound, whatever the journal's clock
	})
	cancelBoth := func() { cancel(); endGrace() }
	stop := context.AfterFunc(c.j.ctx, cancelBoth)
	c.cancel = append(c.cancel, cancelBoth)
	c.wg.Add(1)
	c.mu.Unlock()

	r, err := c.newReader(ctx, topic)
	if err != nil {
		stop()
		stopGrace()
		cancelBoth()
		c.wg.Done()
		return nil, err
	}
	r.msgCtx = msgCtx
	out := make(chan *message.Message)
	c.j.wg.Add(1)
	go func() {
		defer c.j.wg.Done()
		defer c.wg.Done()
		defer cancelBoth()
		defer stop()
		r.run(out)
		if err := c.j.Flush(); err != nil {
			r.log.Error("Cannot save journal cursors", err, nil)
		}
	}()
	return out, nil
}

// Close stops every reader of the consumer and waits for them.
func (c *Consumer) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	for _, cancel := range c.cancel {
		cancel()
	}
	c.mu.Unlock()
	c.wg.Wait()
	return nil
}

type delivery struct {
	rec     Record
	key     string
	retryAt time.Time
}

type outcome struct {
	d     *delivery
	acked bool
}

type reader struct {
	c      *Consumer
	j      *Journal
	ctx    context.Context // the subscription's: done means send no more
	msgCtx context.Context // the messages': outlives ctx by the stop grace
	topic  string
	key    CursorKey
	log    watermill.LoggerAdapter
	acked  []Range // acknowledged above the cursor at start: never lost

	// Guarded by mu:
	pos       uint64 // next offset to read
	end       uint64 // first offset past Until; 0 while unknown
	committed uint64 // every offset below it is acknowledged
	doneAbove map[uint64]struct{}

	mu       sync.Mutex // guards everything below and the fields above
	buf      []Record
	ready    []*delivery
	inflight int
	busy     map[string][]*delivery // key -> waiting behind the one in flight
	pending  int
	retries  []*delivery
	changed  chan struct{} // closed to wake idle workers; nil when none waits
	ended    bool
	// After a failed read, reading waits until readAgainAt (zero: no wait),
	// backing off while the storage keeps failing.
	readAgainAt time.Time
	readBackoff *backoff.ExponentialBackOff
}

func (c *Consumer) newReader(ctx context.Context, topic string) (*reader, error) {
	j := c.j
	r := &reader{
		c: c, j: j, ctx: ctx, topic: topic,
		key:       CursorKey{Topic: topic, Group: c.cfg.Group},
		log:       j.cfg.Logger.With(watermill.LogFields{"topic": topic, "group": c.cfg.Group}),
		doneAbove: make(map[uint64]struct{}),
		busy:      make(map[string][]*delivery),
	}
	first, next := j.st.Bounds(topic)
	cur, hasCursor := uint64(0), false
	if c.cfg.Group != "" {
		var saved Cursor
		saved, hasCursor = j.groupCursor(r.key)
		cur, r.acked = saved.Next, saved.Acked
	}
	switch {
	case hasCursor:
		r.pos = cur
	case !c.cfg.StartAt.IsZero():
		p, err := j.st.Seek(topic, c.cfg.StartAt)
		if err != nil {
			return nil, err
		}
		r.pos = p
	case c.cfg.FromOldest:
		r.pos = first
	default:
		r.pos = next
	}
	if r.pos < first { // only a cursor can point there
		r.lostToRetention(r.pos, first)
		r.pos = first
	}
	r.committed = r.pos
	r.end = c.cfg.UntilOffset
	if c.cfg.Group != "" {
		// Pin the start now: a crash before the first acknowledgement must
		// resume here, not at a later head.
		j.setCursor(r.key, r.pos)
	}
	return r, nil
}

// run delivers with MaxInFlight workers. There is no dispatcher goroutine:
// each worker takes the next free message under the reader's lock, sends it,
// waits for its answer and settles it, so a delivery costs no hand-off
// besides the router's own.
func (r *reader) run(out chan<- *message.Message) {
	defer close(out)
	var workers sync.WaitGroup
	for range r.c.cfg.MaxInFlight {
		workers.Add(1)
		go func() {
			defer workers.Done()
			r.work(out)
		}()
	}
	workers.Wait()
	if r.ended && r.c.cfg.OnEnd != nil {
		r.c.cfg.OnEnd()
	}
}

func (r *reader) work(out chan<- *message.Message) {
	for {
		d, w, stop := r.take()
		if stop {
			return
		}
		if d == nil {
			r.wait(w)
			continue
		}
		acked := r.send(out, d)
		r.mu.Lock()
		r.inflight--
		r.settle(outcome{d: d, acked: acked})
		r.wakeLocked()
		r.mu.Unlock()
	}
}

// waitFor is what an idle worker waits on.
type waitFor struct {
	changed  <-chan struct{}
	appended <-chan struct{}
	retryIn  time.Duration
	retry    bool
	// wakeIn is when take should look again although nothing changed: Until
	// has passed (nothing else ends a consumer at the head while nothing is
	// published), or a failed read may be tried again.
	wakeIn time.Duration
	wake   bool
}

// wakeAfter makes the wait end after d at the latest.
func (w *waitFor) wakeAfter(d time.Duration) {
	if !w.wake || d < w.wakeIn {
		w.wakeIn, w.wake = d, true
	}
}

// take returns the next message to deliver, or what to wait for, or stop.
func (r *reader) take() (*delivery, waitFor, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		if r.ended || r.ctx.Err() != nil {
			return nil, waitFor{}, true
		}
		atHead := r.fill()
		if len(r.ready) == 0 && r.reachedEnd() {
			r.ended = true
			r.wakeLocked()
			return nil, waitFor{}, true
		}
		if len(r.ready) > 0 {
			d := r.ready[0]
			r.ready = r.ready[1:]
			r.inflight++
			return d, waitFor{}, false
		}
		var w waitFor
		if atHead {
			w.appended = r.j.appended(r.topic)
			// Re-check: an append may have landed between fill and here.
			if _, n := r.j.st.Bounds(r.topic); n > r.pos {
				continue
			}
			if u := r.c.cfg.Until; !u.IsZero() {
				// checkEndAtHead ends the range once the clock is past
				// Until. Already past, an append under way holds the end
				// back: its completion wakes us.
				if d := u.Sub(r.j.cfg.Clock.Now()); d >= 0 {
					w.wakeAfter(d + time.Nanosecond)
				}
			}
		}
		if !r.readAgainAt.IsZero() {
			// Once it is due, fill reads if it may; if it may not, what
			// stops it wakes us (a settle, a retry), not a timer.
			if d := r.readAgainAt.Sub(r.j.cfg.Clock.Now()); d > 0 {
				w.wakeAfter(d)
			}
		}
		if r.changed == nil {
			r.changed = make(chan struct{})
		}
		w.changed = r.changed
		w.retryIn, w.retry = r.nextWait()
		return nil, w, false
	}
}

// wakeLocked wakes the idle workers: something they wait for may be there.
func (r *reader) wakeLocked() {
	if r.changed != nil {
		close(r.changed)
		r.changed = nil
	}
}

func (r *reader) wait(w waitFor) {
	retryC, stopRetry := r.timer(w.retry, w.retryIn)
	defer stopRetry()
	wakeC, stopWake := r.timer(w.wake, w.wakeIn)
	defer stopWake()
	select {
	case <-w.changed:
	case <-w.appended:
	case <-retryC:
		r.mu.Lock()
		r.releaseRetries()
		r.mu.Unlock()
	case <-wakeC: // take looks again
	case <-r.ctx.Done():
	}
}

// timer starts a timer of d on the journal's clock when on is set, and
// returns its channel and its stop. Off, the channel is nil: never ready.
func (r *reader) timer(on bool, d time.Duration) (<-chan time.Time, func()) {
	if !on {
		return nil, func() {}
	}
	t := r.j.cfg.Clock.NewTimer(d)
	return t.C(), func() { t.Stop() }
}

// send delivers one message and reports whether it was acknowledged.
func (r *reader) send(out chan<- *message.Message, d *delivery) bool {
	msg := message.NewMessage(d.rec.UUID, d.rec.Payload)
	for k, v := range d.rec.Metadata {
		msg.Metadata[k] = v
	}
	if r.c.cfg.Decorate != nil {
		r.c.cfg.Decorate(msg)
	}
	// Each message gets its own context, cancelled once it is answered, as
	// Watermill's Pub/Subs do.
	ctx, cancel := context.WithCancel(r.msgCtx)
	defer cancel()
	msg.SetContext(ctx)
	select {
	case out <- msg:
	case <-r.ctx.Done():
		return false
	}
	select {
	case <-msg.Acked():
		return true
	case <-msg.Nacked():
		return false
	case <-r.msgCtx.Done():
	}
	// Without an answer within the grace the record is not acknowledged and
	// will be delivered again. An answer may have raced the end of it.
	select {
	case <-msg.Acked():
		return true
	default:
		return false
	}
}

func (r *reader) canRead() bool {
	if r.pending >= r.c.cfg.MaxPending {
		return false
	}
	// Nacked messages waiting for their NackDelay hold their slots: while as
	// many wait as may be in flight, reading pauses. Otherwise a consumer
	// whose every message fails (its rejected store down, say) would read
	// its whole backlog into the retry list, and its acknowledgements map.
	if len(r.retries) >= r.c.cfg.MaxInFlight {
		return false
	}
	return r.end == 0 || r.pos < r.end
}

// fill reads the next records and queues those whose key is free. It
// reports whether it stopped for lack of records.
func (r *reader) fill() (atHead bool) {
	for len(r.ready) < r.c.cfg.MaxInFlight && r.canRead() {
		if len(r.buf) == 0 {
			if !r.readAgainAt.IsZero() && r.j.cfg.Clock.Now().Before(r.readAgainAt) {
				return false // backing off after a failed read
			}
			recs, err := r.j.st.Read(r.topic, r.pos, 256)
			if err == nil && len(recs) == 0 {
				if _, next := r.j.st.Bounds(r.topic); next > r.pos {
					// Read again: a record may have been appended since.
					if recs, err = r.j.st.Read(r.topic, r.pos, 256); err == nil && len(recs) == 0 {
						// A gap the storage cannot read (records lost to a
						// power cut or damage): step over it, or we would spin.
						r.log.Error("Skipping unreadable journal records", nil,
							watermill.LogFields{"from": r.pos, "to": next})
						r.markDone(r.pos, next)
						r.pos = next
						continue
					}
				}
			}
			if err != nil {
				r.readFailed(err)
				return false
			}
			if !r.readAgainAt.IsZero() {
				r.readAgainAt = time.Time{}
				r.readBackoff.Reset()
				r.log.Info("Reading the journal again", nil)
			}
			if len(recs) == 0 {
				r.checkEndAtHead()
				return r.end == 0
			}
			r.buf = recs
		}
		rec := r.buf[0]
		r.buf = r.buf[1:]
		if rec.Offset > r.pos {
			// Records trimmed by retention while we were behind, up to the
			// end when the next one held is past it.
			past := r.end != 0 && rec.Offset >= r.end
			upTo := rec.Offset
			if past {
				upTo = r.end
			}
			r.lostToRetention(r.pos, upTo)
			r.markDone(r.pos, upTo)
			if past {
				r.pos = upTo
				r.buf = nil
				return false
			}
		}
		if u := r.c.cfg.Until; !u.IsZero() && rec.Time.After(u) {
			r.end = rec.Offset
			r.buf = nil
			return false
		}
		r.pos = rec.Offset + 1
		d := &delivery{rec: rec}
		if r.c.cfg.OrderKey != nil {
			d.key = r.c.cfg.OrderKey(r.message(rec))
		}
		r.enqueue(d)
	}
	return false
}

// Bounds of the wait between reads of a storage that keeps failing.
const (
	readRetryFirst = 100 * time.Millisecond
	readRetryMax   = 30 * time.Second
)

// readFailed schedules the next read after a backoff on the journal's clock:
// an idle worker wakes for it, so one failed read cannot stall the consumer.
func (r *reader) readFailed(err error) {
	if r.readBackoff == nil {
		r.readBackoff = backoff.NewExponentialBackOff(
			backoff.WithInitialInterval(readRetryFirst),
			backoff.WithMaxInterval(readRetryMax),
			backoff.WithMaxElapsedTime(0),
			backoff.WithRandomizationFactor(0), // one local storage: no herd to spread
			backoff.WithClockProvider(r.j.cfg.Clock),
		)
	}
	d := r.readBackoff.NextBackOff()
	r.readAgainAt = r.j.cfg.Clock.Now().Add(d)
	r.log.Error("Cannot read journal; trying again", err, watermill.LogFields{"retry_in": d.String(), "offset": r.pos})
}

// lostToRetention reports the records of [from, to) the consumer will never
// see, but for those its group acknowledged already.
func (r *reader) lostToRetention(from, to uint64) {
	n := to - from - rangesLen(intersectRanges([]Range{{from, to}}, r.acked))
	if n > 0 && r.c.cfg.OnRetentionLoss != nil {
		r.c.cfg.OnRetentionLoss(n)
	}
}

// checkEndAtHead ends a consumer whose Until has passed once it has read
// everything: once no append under way can still add a record stamped
// before Until, and none has landed since the read.
func (r *reader) checkEndAtHead() {
	u := r.c.cfg.Until
	if u.IsZero() || r.end != 0 || !r.j.cfg.Clock.Now().After(u) || r.j.mayAppendBy(r.topic, u) {
		return
	}
	if _, next := r.j.st.Bounds(r.topic); next > r.pos {
		return // read it first
	}
	r.end = r.pos
}

func (r *reader) message(rec Record) *message.Message {
	msg := message.NewMessage(rec.UUID, rec.Payload)
	msg.Metadata = rec.Metadata
	return msg
}

func (r *reader) enqueue(d *delivery) {
	if d.key != "" {
		if q, ok := r.busy[d.key]; ok {
			r.busy[d.key] = append(q, d)
			r.pending++
			return
		}
		r.busy[d.key] = nil
	}
	r.ready = append(r.ready, d)
}

func (r *reader) settle(o outcome) {
	d := o.d
	if !o.acked {
		if r.ctx.Err() != nil {
			return
		}
		d.retryAt = r.j.cfg.Clock.Now().Add(r.c.cfg.NackDelay)
		r.retries = append(r.retries, d)
		return
	}
	r.markDone(d.rec.Offset, d.rec.Offset+1)
	if d.key == "" {
		return
	}
	if q := r.busy[d.key]; len(q) > 0 {
		r.busy[d.key] = q[1:]
		r.pending--
		r.ready = append(r.ready, q[0])
		return
	}
	delete(r.busy, d.key)
}

func (r *reader) nextWait() (time.Duration, bool) {
	if len(r.retries) == 0 {
		return 0, false
	}
	now := r.j.cfg.Clock.Now()
	earliest := r.retries[0].retryAt
	for _, d := range r.retries[1:] {
		if d.retryAt.Before(earliest) {
			earliest = d.retryAt
		}
	}
	return max(earliest.Sub(now), 0), true
}

func (r *reader) releaseRetries() {
	now := r.j.cfg.Clock.Now()
	kept := r.retries[:0]
	for _, d := range r.retries {
		if !d.retryAt.After(now) {
			// Retried ahead of the queue: it was first in line before.
			r.ready = append([]*delivery{d}, r.ready...)
			continue
		}
		kept = append(kept, d)
	}
	r.retries = kept
}

// markDone records offsets [from, to) as acknowledged and moves the cursor
// over every acknowledged prefix.
func (r *reader) markDone(from, to uint64) {
	if from <= r.committed && to > r.committed {
		from = r.committed
		r.committed = to
		for o := from; o < to; o++ {
			delete(r.doneAbove, o)
		}
	}
	for o := from; o < to; o++ {
		if o >= r.committed {
			r.doneAbove[o] = struct{}{}
		}
	}
	moved := r.committed > from
	for {
		if _, ok := r.doneAbove[r.committed]; !ok {
			break
		}
		delete(r.doneAbove, r.committed)
		r.committed++
		moved = true
	}
	if moved && r.c.cfg.Group != "" {
		r.j.setCursor(r.key, r.committed)
	}
}

func (r *reader) reachedEnd() bool {
	return r.end != 0 && r.committed >= r.end && r.inflight == 0
}
