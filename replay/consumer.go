package replay

import (
	"context"
	"errors"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/cenkalti/backoff/v4"

	"github.com/sinkbus/sinkbus/internal/stopping"
)

// Defaults of ConsumerConfig's memory bounds.
const (
	// DefaultMaxWaitingBytes bounds the memory a reader holds for the events
	// it has read and not handed out yet.
	DefaultMaxWaitingBytes = 32 << 20
)

// ConsumerConfig says where a consumer starts, where it ends, how many
// messages it has in flight and how much memory it may hold.
type ConsumerConfig struct {
	// Group names the durable cursor. A group that has a cursor resumes from
	// it: past its watermark, and past every offset acknowledged above it
	// (Cursor.Acked), so a restart delivers again only what was not
	// acknowledged. Acknowledgements move it. Empty means an ephemeral
	// consumer with no cursor (a replay).
	Group string
	// StartOffset, when not zero, is where a consumer without a cursor
	// starts, whatever StartAt says. A caller that finds the offset of
	// StartAt itself (Storage.Seek) and sets it here has a Subscribe that
	// cannot fail on the storage: Watermill's router keeps a handler whose
	// Subscribe failed, and every later start fails on it.
	StartOffset uint64
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
	// one in flight per key. Messages of other keys pass a busy key by; those
	// of the busy key wait in memory, within MaxWaitingBytes.
	OrderKey func(*message.Message) string
	// MaxWaitingBytes bounds the memory a reader holds for the records it
	// has read and not handed out yet: read ahead, or waiting behind a busy
	// order key (their payloads, metadata and about 150 bytes of
	// bookkeeping each). At the bound reading pauses, and OnPause is called,
	// until deliveries make room. What is in flight, or waiting out its
	// NackDelay, is bounded by MaxInFlight instead. Zero means
	// DefaultMaxWaitingBytes (32 MiB).
	MaxWaitingBytes int64
	// MaxWaitingPayloadBytes bounds the payloads and metadata among what
	// MaxWaitingBytes holds. Past it, a record waiting behind a busy key
	// keeps only its offset and key, and is read again from the storage
	// when its turn comes; read-ahead shrinks to fit. Zero means a quarter
	// of MaxWaitingBytes.
	MaxWaitingPayloadBytes int64
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
	// SharedContext gives every message the subscription's context (which
	// outlives it by StopGrace) instead of a context of its own cancelled
	// once it is answered: for a handler that leaves nothing running on it
	// past its answer. It saves allocations per message.
	SharedContext bool
	// Select, when set, decides which records become messages, before a
	// storage that shows them in place (Viewer) copies them. A record it
	// passes over is never sent: it is acknowledged as it is read, a run
	// of them as one range. It is called for one record at a time, by a
	// worker or by an Append that finds the reader idle at the head (which
	// then acknowledges what it passes over without waking the reader),
	// maybe with the storage's or the reader's lock held: it must not call
	// the journal.
	Select func(RecordView) Verdict
	// OnSkip is called, outside any lock, with each record Select answered
	// Skip for (a copy), once it is acknowledged: by a worker, or by the
	// Append that passed it over.
	OnSkip func(*Record)
	// CountSkipped, when set and OnSkip is not, is called outside any
	// lock with how many records Select answered Skip for since its last
	// call, once they are acknowledged: they are counted in bulk, never
	// copied.
	CountSkipped func(n int)
	// OnEnd is called once when Until or UntilOffset is reached.
	OnEnd func()
	// OnRetentionLoss is called, with how many records were lost, when a
	// group's cursor points before the oldest retained record: at start,
	// or while the group is running behind. It may be called with the
	// reader's lock held: it must not call back into the consumer.
	OnRetentionLoss func(lost uint64)
	// OnPause is called with paused set when reading pauses because what
	// waits fills MaxWaitingBytes, and with paused unset once it has shrunk
	// to half of it and reading goes on; waiting is the bytes held then.
	// It is called with the reader's lock held: it must not call back into
	// the consumer.
	OnPause func(paused bool, waiting int64)
}

func (c *ConsumerConfig) setDefaults() {
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 1
	}
	if c.MaxWaitingBytes <= 0 {
		c.MaxWaitingBytes = DefaultMaxWaitingBytes
	}
	if c.MaxWaitingPayloadBytes <= 0 {
		c.MaxWaitingPayloadBytes = c.MaxWaitingBytes / 4
	}
	c.MaxWaitingPayloadBytes = min(c.MaxWaitingPayloadBytes, c.MaxWaitingBytes)
	if c.NackDelay <= 0 {
		c.NackDelay = time.Second
	}
}

// Verdict is what ConsumerConfig.Select decides for a record.
type Verdict uint8

const (
	// Deliver sends the record.
	Deliver Verdict = iota
	// Skip acknowledges the record unsent and hands it to OnSkip.
	Skip
	// Pass acknowledges the record unsent and unreported: it is no
	// business of the consumer's (another tenant's event).
	Pass
)

// ErrConsumerClosed is returned by Subscribe on a closed Consumer.
var ErrConsumerClosed = errors.New("sinkbus: journal consumer closed")

// Consumer is a message.Subscriber reading a topic of the journal for one
// group.
type Consumer struct {
	j   *Journal
	cfg ConsumerConfig

	mu     sync.Mutex
	closed bool
	subs   map[uint64]*subscription // running, by id
	nextID uint64
	wg     sync.WaitGroup
}

// subscription is one Subscribe call's reader and how to stop it.
type subscription struct {
	cancel func() // ends the subscription and the grace of its messages
	r      *reader
}

// Consumer returns a subscriber for cfg. Each Subscribe call runs one reader.
func (j *Journal) Consumer(cfg ConsumerConfig) *Consumer {
	cfg.setDefaults()
	return &Consumer{j: j, cfg: cfg, subs: make(map[uint64]*subscription)}
}

// Subscribe starts reading topic and returns the messages. The channel closes
// when ctx is done, the consumer or journal is closed, or Until is reached.
// It fails only on a closed consumer (ErrConsumerClosed), or when it must
// find StartAt in the storage (see StartOffset); on a closed journal the
// channel closes at once.
func (c *Consumer) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrConsumerClosed
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
	id := c.nextID
	c.nextID++
	sub := &subscription{cancel: cancelBoth}
	c.subs[id] = sub
	c.wg.Add(1)
	c.mu.Unlock()

	r, err := c.newReader(ctx, topic)
	if err != nil {
		stop()
		stopGrace()
		cancelBoth()
		c.forget(id)
		c.wg.Done()
		return nil, err
	}
	r.msgCtx = msgCtx
	c.mu.Lock()
	sub.r = r
	c.mu.Unlock()
	out := make(chan *message.Message)
	c.j.wg.Add(1)
	go func() {
		defer c.j.wg.Done()
		defer c.wg.Done()
		defer c.forget(id)
		defer cancelBoth()
		defer stop()
		r.run(out)
		c.j.untrack(r)
		if err := c.j.Flush(); err != nil {
			r.log.Error("Cannot save journal cursors", err, nil)
		}
	}()
	return out, nil
}

// forget drops a subscription that ended.
func (c *Consumer) forget(id uint64) {
	c.mu.Lock()
	delete(c.subs, id)
	c.mu.Unlock()
}

// Close stops every reader of the consumer and waits for them.
func (c *Consumer) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	for _, s := range c.subs {
		s.cancel()
	}
	c.mu.Unlock()
	c.wg.Wait()
	return nil
}

// ConsumerStats is what a consumer's readers hold in memory for the records
// they have read and not handed out yet.
type ConsumerStats struct {
	// Waiting counts those records: read ahead, or waiting behind a busy
	// order key.
	Waiting int
	// WaitingBytes is the memory they hold, as MaxWaitingBytes counts it.
	WaitingBytes int64
	// WaitingPayloadBytes is the part of it that payloads and metadata
	// take, as MaxWaitingPayloadBytes counts it.
	WaitingPayloadBytes int64
	// Paused is set while a reader does not read because WaitingBytes
	// reached MaxWaitingBytes.
	Paused bool
}

// Stats returns what the consumer's readers hold now.
func (c *Consumer) Stats() ConsumerStats {
	c.mu.Lock()
	readers := make([]*reader, 0, len(c.subs))
	for _, s := range c.subs {
		if s.r != nil {
			readers = append(readers, s.r)
		}
	}
	c.mu.Unlock()
	var st ConsumerStats
	for _, r := range readers {
		r.mu.Lock()
		st.Waiting += r.bufRecords() + r.pending
		st.WaitingBytes += r.waitingBytes()
		st.WaitingPayloadBytes += r.waitingPayload()
		st.Paused = st.Paused || r.paused
		r.mu.Unlock()
	}
	return st
}

type delivery struct {
	rec Record
	key string
	// size is the bytes of rec held in memory: zero once stripped.
	size int64
	// stripped: rec holds only its offset (to stay within
	// MaxWaitingPayloadBytes); it is read again before it is sent.
	stripped bool
	retryAt  time.Time
}

// entryBytes is what a delivery costs while it waits behind a busy key,
// payload aside: the struct, its slot in the key's queue and the
// acknowledgement range its hole may split.
const entryBytes = 150

// waitCost is the memory d holds while it waits behind its key.
func (d *delivery) waitCost() int64 { return entryBytes + int64(len(d.key)) + d.size }

// recordBytes is the memory of rec's payload and metadata.
func recordBytes(rec *Record) int64 {
	n := len(rec.Payload) + len(rec.UUID)
	for k, v := range rec.Metadata {
		n += len(k) + len(v) + 16
	}
	return int64(n)
}

// judged is Select's verdict on a record read, and on the span records
// right after it when they are passed over with the same verdict: a run
// of records passed over takes one entry of buf, and one step of fill.
type judged struct {
	verdict Verdict
	span    uint32 // below maxRead
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

	mu sync.Mutex // guards everything below

	pos       uint64 // next offset to read
	end       uint64 // first offset past Until; 0 while unknown
	committed uint64 // every offset below it is acknowledged
	acked     ackSet // the offsets acknowledged above committed

	buf      []Record // read ahead
	verdicts []judged // Select's for buf, nil without one
	bufBytes int64    // payloads and metadata of buf
	skipped  []Record // Skip verdicts acknowledged, for OnSkip
	skips    int      // Skip verdicts acknowledged, for CountSkipped
	// What readSelect reads into and reuses once fill has taken it all:
	// only the reading worker touches them.
	readRecs     []Record
	readVerdicts []judged
	viewer       Viewer           // the storage, when it shows records in place and there is a Select
	view         func(RecordView) // appends to them
	ready        []*delivery
	inflight     int
	busy         map[string][]*delivery // key -> waiting behind the one in flight
	pending      int                    // deliveries in busy
	// Memory of the deliveries in busy: waitCost summed, and their
	// payloads alone.
	pendingBytes, pendingPayload int64
	paused                       bool  // reading paused at MaxWaitingBytes
	reading                      bool  // a worker reads the storage, r.mu released
	avgRecord                    int64 // bytes per record of the last read: sizes the next
	retries                      []*delivery
	// idle are the kicks of the workers waiting in wait, the one watching
	// appends among them (watcherKick). wakeLocked kicks one, not all: take
	// kicks as many as there is work for, so an integration idle at the
	// head pays for one worker's wake per event, not for all of its
	// MaxInFlight.
	idle        []chan struct{}
	watcherKick chan struct{}
	// watching: an idle worker waits for appends. One is enough: it wakes
	// the others when what it read is more than it takes. Each idle
	// worker of each integration woken by every append costs the many
	// integrations that pass most events over more than their work.
	watching bool
	ended    bool
	// readToHead: the records buffered reach what was the head when they
	// were viewed, so that once they are taken fill reports the head
	// without another view that would show nothing (take checks Bounds
	// after it watches).
	readToHead bool
	// After a failed read, reading waits until readAgainAt (zero: no wait),
	// backing off while the storage keeps failing.
	readAgainAt time.Time
	readBackoff *backoff.ExponentialBackOff
}

func (c *Consumer) newReader(ctx context.Context, topic string) (*reader, error) {
	j := c.j
	r := &reader{
		c: c, j: j, ctx: ctx, topic: topic,
		key:  CursorKey{Topic: topic, Group: c.cfg.Group},
		log:  j.cfg.Logger.With(watermill.LogFields{"topic": topic, "group": c.cfg.Group}),
		busy: make(map[string][]*delivery),
	}
	if v, ok := j.st.(Viewer); ok && c.cfg.Select != nil {
		r.viewer, r.view = v, r.viewOne
	}
	first, next := j.st.Bounds(topic)
	var cur Cursor
	hasCursor := false
	if c.cfg.Group != "" {
		cur, hasCursor = j.Cursor(topic, c.cfg.Group)
	}
	switch {
	case hasCursor:
		r.pos = cur.Next
		for _, rg := range cur.Acked {
			r.acked.add(rg.From, rg.To)
		}
	case c.cfg.StartOffset != 0:
		r.pos = c.cfg.StartOffset
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
	r.committed = r.pos
	r.end = c.cfg.UntilOffset
	if r.pos < first { // only a cursor can point there
		r.lostToRetention(r.pos, first)
		r.markDone(r.pos, first)
		r.pos = r.committed
	}
	if c.cfg.Group != "" {
		// Pin the start now: a crash before the first acknowledgement must
		// resume here, not at a later head.
		j.track(r)
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
	kick := make(chan struct{}, 1)
	for {
		d, w, stop, skipped, skips := r.take(kick)
		if r.c.cfg.OnSkip != nil {
			for i := range skipped {
				r.c.cfg.OnSkip(&skipped[i])
			}
		}
		if skips > 0 {
			r.c.cfg.CountSkipped(skips)
		}
		if stop {
			return
		}
		if d == nil {
			r.wait(w)
			continue
		}
		var acked bool
		gone, err := r.load(d)
		switch {
		case err != nil:
			// Delivered again after the NackDelay, read again then.
			r.log.Error("Cannot read a journal record again; trying later", err, watermill.LogFields{"offset": d.rec.Offset})
		case gone:
			acked = true
		default:
			if acked = r.send(out, d); !acked {
				unsent(d)
			}
		}
		r.mu.Lock()
		if gone {
			r.lostToRetention(d.rec.Offset, d.rec.Offset+1)
		}
		r.inflight--
		r.settle(outcome{d: d, acked: acked})
		if !acked {
			// A retry to time: an idle worker sets its timer, while this
			// one may take a delivery. What an acknowledgement frees (a
			// key, memory, the end) this worker's own take sees next.
			r.wakeLocked()
		}
		r.mu.Unlock()
	}
}

// load reads a stripped delivery's record again; gone reports that
// retention removed it meanwhile. It runs outside the reader's lock.
func (r *reader) load(d *delivery) (gone bool, err error) {
	if !d.stripped {
		return false, nil
	}
	recs, err := r.j.st.Read(r.topic, d.rec.Offset, 1)
	if err != nil {
		return false, err
	}
	if len(recs) == 0 || recs[0].Offset != d.rec.Offset {
		return true, nil
	}
	d.rec, d.stripped = recs[0], false
	return false, nil
}

// unsent strips a delivery that was sent and not acknowledged: the message
// had its payload and metadata, which its handler may have changed. It is
// read again before it is sent again.
func unsent(d *delivery) {
	d.rec, d.size, d.stripped = Record{Offset: d.rec.Offset}, 0, true
}

// waitFor is what an idle worker waits on.
type waitFor struct {
	kick     chan struct{} // the worker's own, sent to by wakeLocked
	appended <-chan struct{}
	retryIn  time.Duration
	retry    bool
	// wakeIn is when take should look again although nothing changed: Until
	// has passed (nothing else ends a consumer at the head while nothing is
	// published), or a failed read may be tried again.
	wakeIn time.Duration
	wake   bool
	watch  bool // the worker watches appends (reader.watching)
}

// wakeAfter makes the wait end after d at the latest.
func (w *waitFor) wakeAfter(d time.Duration) {
	if !w.wake || d < w.wakeIn {
		w.wakeIn, w.wake = d, true
	}
}

// take returns the next message to deliver, or what to wait for (kick is
// the calling worker's), or stop, and the records skipped meanwhile that
// OnSkip is to see, or how many for CountSkipped.
func (r *reader) take(kick chan struct{}) (d *delivery, w waitFor, stop bool, skipped []Record, skips int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	defer func() {
		if len(r.skipped) > 0 {
			skipped, r.skipped = r.skipped, nil
		}
		skips, r.skips = r.skips, 0
	}()
	for {
		if r.ended || r.ctx.Err() != nil {
			r.wakeLocked() // the next idle worker stops too
			return nil, waitFor{}, true, nil, 0
		}
		atHead := r.fill()
		if len(r.ready) == 0 && r.reachedEnd() {
			r.ended = true
			r.wakeLocked()
			return nil, waitFor{}, true, nil, 0
		}
		if len(r.ready) > 0 {
			d := r.ready[0]
			r.ready = r.ready[1:]
			r.inflight++
			// Work for the idle workers, all at once (a batching sink
			// wants a burst's deliveries together), and appends for one
			// to watch.
			n := len(r.ready)
			if !r.watching {
				n++
			}
			for range min(n, len(r.idle)) {
				r.wakeLocked()
			}
			return d, waitFor{}, false, nil, 0
		}
		var w waitFor
		if atHead && !r.watching {
			if r.c.cfg.Select != nil {
				w.appended = r.j.heads.watch(r)
			} else {
				w.appended = r.j.appended(r.topic)
			}
			// Re-check: an append may have landed between fill and here.
			if _, n := r.j.st.Bounds(r.topic); n > r.pos {
				continue
			}
			r.watching, w.watch = true, true
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
		w.kick = kick
		r.idle = append(r.idle, kick)
		if w.watch {
			r.watcherKick = kick
		}
		w.retryIn, w.retry = r.nextWait()
		return nil, w, false, nil, 0
	}
}

// wakeLocked wakes an idle worker: something it waits for may be there.
// One not watching appends if it can, so that the watcher stays put.
func (r *reader) wakeLocked() {
	n := len(r.idle)
	if n == 0 {
		return
	}
	i := n - 1
	if r.idle[i] == r.watcherKick && n > 1 {
		i--
	}
	kick := r.idle[i]
	r.idle = slices.Delete(r.idle, i, i+1)
	select {
	case kick <- struct{}{}:
	default: // kicked already, not yet awake
	}
}

// unidle takes kick out of the idle workers, if a wake did not already.
func (r *reader) unidle(kick chan struct{}) {
	if i := slices.Index(r.idle, kick); i >= 0 {
		r.idle = slices.Delete(r.idle, i, i+1)
	}
}

func (r *reader) wait(w waitFor) {
	retryC, stopRetry := r.timer(w.retry, w.retryIn)
	defer stopRetry()
	wakeC, stopWake := r.timer(w.wake, w.wakeIn)
	defer stopWake()
	select {
	case <-w.kick:
	case <-w.appended:
	case <-retryC:
		r.mu.Lock()
		r.releaseRetries()
		r.mu.Unlock()
	case <-wakeC: // take looks again
	case <-r.ctx.Done():
	}
	r.mu.Lock()
	r.unidle(w.kick)
	if w.watch {
		r.watching = false
		r.watcherKick = nil
		if r.c.cfg.Select != nil {
			// Before another worker watches: it would get the same channel.
			r.j.heads.unwatch(r)
		}
	}
	r.mu.Unlock()
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
// The message takes the record's payload and metadata, which are the
// delivery's own copy: what the handler changes in them is not sent again,
// as a delivery that is not acknowledged is read again (unsent).
func (r *reader) send(out chan<- *message.Message, d *delivery) bool {
	msg := message.NewMessage(d.rec.UUID, d.rec.Payload)
	if d.rec.Metadata != nil {
		msg.Metadata = d.rec.Metadata
	}
	if r.c.cfg.Decorate != nil {
		r.c.cfg.Decorate(msg)
	}
	if r.c.cfg.SharedContext {
		msg.SetContext(r.msgCtx)
	} else {
		// Each message gets its own context, cancelled once it is
		// answered, as Watermill's Pub/Subs do.
		ctx, cancel := context.WithCancel(r.msgCtx)
		defer cancel()
		msg.SetContext(ctx)
	}
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

// canRead reports whether fill may take more records.
func (r *reader) canRead() bool {
	// Nacked messages waiting for their NackDelay hold their slots: while as
	// many wait as may be in flight, reading pauses. Otherwise a consumer
	// whose every message fails (its rejected store down, say) would read
	// its whole backlog into the retry list.
	if len(r.retries) >= r.c.cfg.MaxInFlight {
		return false
	}
	if r.end != 0 && r.pos >= r.end {
		return false
	}
	return !r.full()
}

// full reports whether what waits fills MaxWaitingBytes, and tells OnPause
// when reading pauses and when it goes on: once half the bound is free, so
// that a bound reached again and again is not reported at every delivery.
func (r *reader) full() bool {
	held, limit := r.waitingBytes(), r.c.cfg.MaxWaitingBytes
	switch {
	case held >= limit:
		if !r.paused {
			r.paused = true
			r.log.Info("Reading paused: the records waiting fill their memory bound",
				watermill.LogFields{"waiting_bytes": held, "max_waiting_bytes": limit})
			if r.c.cfg.OnPause != nil {
				r.c.cfg.OnPause(true, held)
			}
		}
		return true
	case r.paused && held <= limit/2:
		r.paused = false
		r.log.Info("Reading goes on", watermill.LogFields{"waiting_bytes": held})
		if r.c.cfg.OnPause != nil {
			r.c.cfg.OnPause(false, held)
		}
	}
	return false
}

// waitingBytes is the memory held for records read and not handed out.
func (r *reader) waitingBytes() int64 { return r.bufBytes + r.pendingBytes }

// bufRecords is how many records buf holds, each of a run counted.
func (r *reader) bufRecords() int {
	n := len(r.buf)
	for _, v := range r.verdicts {
		n += int(v.span)
	}
	return n
}

// waitingPayload is the part of waitingBytes that payloads take.
func (r *reader) waitingPayload() int64 { return r.bufBytes + r.pendingPayload }

// maxRead is how many records one read may ask for.
const maxRead = 256

// readSize is how many records the next read asks for: as many as the
// payload bound has room for, judging by the last read, and none that is
// already acknowledged.
func (r *reader) readSize() int {
	n := uint64(maxRead)
	if r.avgRecord > 0 {
		room := max(r.c.cfg.MaxWaitingPayloadBytes-r.waitingPayload(), 0)
		n = min(n, max(uint64(room/r.avgRecord), 1))
	}
	if from, ok := r.acked.nextAbove(r.pos); ok {
		n = min(n, from-r.pos)
	}
	return int(n)
}

// keep buffers the records read, as many as the payload bound has room
// for (at least one); the others are dropped and read again later.
func (r *reader) keep(recs []Record, verdicts []judged) (records int) {
	room := r.c.cfg.MaxWaitingPayloadBytes - r.waitingPayload()
	var kept, total int64
	k := len(recs)
	for i := range recs {
		size := recordBytes(&recs[i])
		total += size
		if i > 0 && kept+size > room && k == len(recs) {
			k = i
		}
		if k == len(recs) {
			kept += size
		}
		records++
		if verdicts != nil {
			records += int(verdicts[i].span)
		}
	}
	r.avgRecord = max(total/int64(records), 1)
	clear(recs[k:]) // let the payloads go
	r.buf = recs[:k]
	if verdicts != nil {
		r.verdicts = verdicts[:k]
	}
	r.bufBytes += kept
	return records
}

// fill reads the next records and queues those whose key is free. It
// reports whether it stopped for lack of records.
func (r *reader) fill() (atHead bool) {
	// A run of skipped offsets, acknowledged as one range when it ends.
	var runFrom, runTo uint64
	defer func() {
		if runTo > runFrom {
			r.markDone(runFrom, runTo)
		}
	}()
	for len(r.ready) < r.c.cfg.MaxInFlight && r.canRead() {
		if len(r.buf) == 0 {
			if !r.readAgainAt.IsZero() && r.j.cfg.Clock.Now().Before(r.readAgainAt) {
				return false // backing off after a failed read
			}
			if r.reading {
				return false // another worker reads; it wakes us
			}
			if r.readToHead {
				r.readToHead = false
				r.checkEndAtHead()
				return r.end == 0
			}
			// Acknowledged before a restart (or, past a gap, with the gap
			// itself): not read again.
			if r.pos = r.acked.skip(max(r.pos, r.committed)); r.end != 0 && r.pos >= r.end {
				continue
			}
			want := r.readSize()
			recs, verdicts, gap, err := r.read(r.pos, want)
			if gap != 0 {
				// A gap the storage cannot read (records lost to a power cut
				// or damage): step over it, or we would spin.
				r.log.Error("Skipping unreadable journal records", nil,
					watermill.LogFields{"from": r.pos, "to": gap})
				r.markDone(r.pos, gap)
				r.pos = gap
				continue
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
			records := r.keep(recs, verdicts)
			// A Viewer shows fewer than asked only at the head.
			r.readToHead = len(r.buf) == len(recs) && records < want && r.viewer != nil
		}
		rec := r.buf[0]
		r.buf[0] = Record{}
		r.buf = r.buf[1:]
		verdict, span := Deliver, uint64(1)
		if len(r.verdicts) > 0 {
			verdict, span = r.verdicts[0].verdict, 1+uint64(r.verdicts[0].span)
			r.verdicts = r.verdicts[1:]
		}
		size := recordBytes(&rec)
		r.bufBytes -= size
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
			r.pos = upTo
			if past {
				r.dropBuf()
				return false
			}
			// The read was sized to stop short of the offsets acknowledged
			// above where it began: past the gap it may hold some. Read
			// again from here.
			r.dropBuf()
			r.readToHead = false
			continue
		}
		if u := r.c.cfg.Until; !u.IsZero() && rec.Time.After(u) {
			r.end = rec.Offset
			r.dropBuf()
			return false
		}
		r.pos = rec.Offset + span
		if verdict != Deliver {
			if rec.Offset != runTo {
				if runTo > runFrom {
					r.markDone(runFrom, runTo)
				}
				runFrom = rec.Offset
			}
			runTo = r.pos
			switch {
			case verdict != Skip:
			case r.c.cfg.OnSkip != nil:
				r.skipped = append(r.skipped, rec)
			case r.c.cfg.CountSkipped != nil:
				r.skips += int(span)
			}
			continue
		}
		d := &delivery{rec: rec, size: size}
		if r.c.cfg.OrderKey != nil {
			d.key = r.c.cfg.OrderKey(r.message(rec))
		}
		r.enqueue(d)
	}
	return false
}

// read reads up to n records from pos, with r.mu released meanwhile: a
// worker reading megabytes from the disk holds up no other worker's take
// or settle. gap, when not zero, ends a run of offsets from pos that the
// storage has no record for although it has later ones. r.mu is held, and
// held again when read returns; r.pos is not moved meanwhile (only the
// reading worker moves it).
func (r *reader) read(pos uint64, n int) (recs []Record, verdicts []judged, gap uint64, err error) {
	r.reading = true
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.reading = false
		// The workers that found this read under way wait for what it
		// brings: take wakes them when it brings more than this worker
		// takes. At the head it brings nothing: this worker waits for the
		// next append, and wakes them once it has read it.
		if gap != 0 || err != nil {
			r.wakeLocked()
		}
	}()
	recs, verdicts, err = r.readSelect(pos, n)
	if err != nil || len(recs) > 0 {
		return recs, verdicts, 0, err
	}
	if _, next := r.j.st.Bounds(r.topic); next > pos {
		// Read again: a record may have been appended since.
		if recs, verdicts, err = r.readSelect(pos, n); err == nil && len(recs) == 0 {
			return nil, nil, next, nil
		}
	}
	return recs, verdicts, 0, err
}

// readSelect reads up to n records from pos with Select's verdicts (nil
// without a Select). A record passed over keeps only its offset and time.
func (r *reader) readSelect(pos uint64, n int) ([]Record, []judged, error) {
	sel := r.c.cfg.Select
	if sel == nil {
		recs, err := r.j.st.Read(r.topic, pos, n)
		return recs, nil, err
	}
	if r.viewer != nil {
		// fill has taken what the last read brought: reuse its arrays.
		r.readRecs, r.readVerdicts = r.readRecs[:0], r.readVerdicts[:0]
		err := r.viewer.View(r.topic, pos, n, r.view)
		return r.readRecs, r.readVerdicts, err
	}
	recs, err := r.j.st.Read(r.topic, pos, n)
	var verdicts []judged
	if len(recs) > 0 {
		verdicts = make([]judged, len(recs))
	}
	for i := range recs {
		verdicts[i].verdict = sel(recordView{&recs[i]})
		if verdicts[i].verdict != Deliver && (verdicts[i].verdict == Pass || r.c.cfg.OnSkip == nil) {
			recs[i] = Record{Offset: recs[i].Offset, Time: recs[i].Time}
		}
	}
	return recs, verdicts, err
}

// viewOne takes a record a Viewer shows: all of it when it is to be sent
// or reported, its offset and time when it is passed over. One passed over
// right after the record before, with the same verdict, joins its run if
// it is before the consumer's end: fill checks the end on the first record
// of each entry only. A record after a gap starts an entry of its own:
// fill finds the gap there.
func (r *reader) viewOne(rv RecordView) {
	verdict, off := r.c.cfg.Select(rv), rv.Offset()
	if verdict == Deliver || verdict == Skip && r.c.cfg.OnSkip != nil {
		r.readRecs = append(r.readRecs, rv.Record())
		r.readVerdicts = append(r.readVerdicts, judged{verdict: verdict})
		return
	}
	if n := len(r.readVerdicts); n > 0 && r.beforeEnd(off, rv) {
		// The last entry is the record before if it ends right here.
		if last := &r.readVerdicts[n-1]; last.verdict == verdict && r.readRecs[n-1].Offset+uint64(last.span)+1 == off {
			last.span++
			return
		}
	}
	r.readRecs = append(r.readRecs, Record{Offset: off, Time: rv.Time()})
	r.readVerdicts = append(r.readVerdicts, judged{verdict: verdict})
}

// beforeEnd reports whether the record at off, shown by rv, is in the
// consumer's range: before UntilOffset, not after Until.
func (r *reader) beforeEnd(off uint64, rv RecordView) bool {
	cfg := &r.c.cfg
	return (cfg.UntilOffset == 0 || off < cfg.UntilOffset) && (cfg.Until.IsZero() || !rv.Time().After(cfg.Until))
}

// dropBuf forgets what was read ahead.
func (r *reader) dropBuf() {
	clear(r.buf)
	r.buf, r.verdicts, r.bufBytes = nil, nil, 0
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
	if n := to - from - r.acked.count(from, to); n > 0 && r.c.cfg.OnRetentionLoss != nil {
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
			if r.waitingPayload()+d.size > r.c.cfg.MaxWaitingPayloadBytes {
				// Its turn may be hours away: keep the offset, read the
				// rest again then.
				d.rec = Record{Offset: d.rec.Offset}
				d.size, d.stripped = 0, true
			}
			r.busy[d.key] = append(q, d)
			r.pending++
			r.pendingBytes += d.waitCost()
			r.pendingPayload += d.size
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
		next := q[0]
		q[0] = nil
		r.busy[d.key] = q[1:]
		r.pending--
		r.pendingBytes -= next.waitCost()
		r.pendingPayload -= next.size
		r.ready = append(r.ready, next)
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

// markDone records offsets [from, to) as acknowledged: the watermark moves
// over every acknowledged prefix, the rest is kept as ranges above it.
func (r *reader) markDone(from, to uint64) {
	switch {
	case to <= r.committed:
		return
	case from <= r.committed && (len(r.acked.ranges) == 0 || r.acked.ranges[0].From > to):
		r.committed = to // in order: the usual case, no range to touch
	default:
		r.acked.add(max(from, r.committed), to)
		if end, ok := r.acked.popAt(r.committed); ok {
			r.committed = end
		}
	}
	if r.c.cfg.Group != "" {
		r.j.cursorsChanged()
	}
}

// cursor returns the group's cursor as the reader holds it; r.mu is held.
func (r *reader) cursor() Cursor { return r.acked.cursor(r.committed) }

// undelivered is how many offsets of [first, head) the reader has not
// acknowledged: its group's lag.
func (r *reader) undelivered(first, head uint64) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if first <= r.committed && r.committed <= head && r.acked.count(head, math.MaxUint64) == 0 {
		return head - r.committed - r.acked.n // the usual case, without a walk over the ranges
	}
	return Cursor{Next: r.committed, Acked: r.acked.ranges}.Undelivered(first, head)
}

func (r *reader) reachedEnd() bool {
	return r.end != 0 && r.committed >= r.end && r.inflight == 0
}
