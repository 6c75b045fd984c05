package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sinkbus/sinkbus/field"
	"github.com/sinkbus/sinkbus/replay"
)

// appendCall is one Append waiting for its records to be inserted, then
// ordered.
type appendCall struct {
	topic string
	recs  []*replay.Record
	at    time.Time

	idx       int            // of its first record within its batch's topic
	committed chan error     // the insert's outcome
	ordered   chan placement // where the batch landed; buffered
}

// placement is where a transaction's records of a topic sit.
type placement struct {
	first uint64
	at    time.Time
}

// Append implements replay.Storage. Concurrent calls share one insert
// statement, so one commit: it returns once that commit is durable and, in
// the common case, its records have their offsets. See Config.OrderWait for
// the uncommon one.
func (s *Storage) Append(topic string, recs []*replay.Record, now func() time.Time) error {
	if len(recs) == 0 {
		return nil
	}
	c := &appendCall{
		topic:     topic,
		recs:      recs,
		committed: make(chan error, 1),
		ordered:   make(chan placement, 1),
	}
	if err := c.encode(); err != nil {
		return err
	}
	// PostgreSQL keeps microseconds; the record's time is what it keeps.
	c.at = now().UTC().Truncate(time.Microsecond)
	if y := c.at.Year(); y < 1 || y > 9999 {
		return fmt.Errorf("sinkbus: postgres journal: time %v out of range (years 1 to 9999)", c.at)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.pending = append(s.pending, c)
	s.mu.Unlock()
	s.kickInserter()

	if err := <-c.committed; err != nil {
		return err
	}
	// Usually the place came with the commit: one wake-up, no timer.
	select {
	case p := <-c.ordered:
		c.place(p)
		return nil
	default:
	}
	t := time.NewTimer(s.cfg.OrderWait)
	defer t.Stop()
	select {
	case p := <-c.ordered:
		c.place(p)
	case <-s.ord.done: // closed: what could be ordered was
		select {
		case p := <-c.ordered:
			c.place(p)
		default:
		}
	case <-t.C:
		// Durable: readers get the records once an older transaction
		// elsewhere ends and they are ordered.
	}
	return nil
}

// place sets the offsets and time of the call's records.
func (c *appendCall) place(p placement) {
	at := p.at.UTC()
	for i, r := range c.recs {
		r.Offset = p.first + uint64(c.idx+i)
		r.Time = at
	}
}

// encode checks what PostgreSQL's text (and jsonb) cannot hold, before the
// records join a batch: one bad record must not fail the others' insert.
func (c *appendCall) encode() error {
	if !textSafe(c.topic) {
		return field.New("topic", "must be UTF-8 without NUL bytes")
	}
	var p field.Problems
	for i, r := range c.recs {
		if !textSafe(r.UUID) {
			p.Add(fmt.Sprintf("[%d].uuid", i), "must be UTF-8 without NUL bytes")
		}
		for k, v := range r.Metadata {
			if !textSafe(k) || !textSafe(v) {
				p.Add(fmt.Sprintf("[%d].metadata", i), "keys and values must be UTF-8 without NUL bytes")
				break
			}
		}
	}
	return p.Err()
}

// textSafe reports whether PostgreSQL's text (and jsonb) can hold s as it is.
func textSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return false
		}
	}
	return utf8.ValidString(s)
}

func (s *Storage) kickInserter() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// insertLoop is the group commit: while one batch is inserted, the calls
// that arrive wait together for the next. After Close it inserts what is
// pending and stops.
func (s *Storage) insertLoop() {
	defer close(s.inserterDone)
	last := 0 // calls in the last batch
	var rows batchRows
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		s.gather(last, t)
		batch, closed := s.takeBatch()
		if len(batch) > 0 {
			s.insertBatch(batch, &rows)
			last = len(batch)
			continue
		}
		if closed {
			return
		}
		<-s.kick
	}
}

// Bounds of the wait for a batch to gather: far below a commit, so that a
// caller that is not coming back costs little.
const (
	gatherGap   = 50 * time.Microsecond
	gatherTotal = 300 * time.Microsecond
)

// gather waits until want calls are pending (as many as the last batch
// held: the callers it released come back with their next records within
// microseconds), no call arrived for gatherGap, or gatherTotal passed.
func (s *Storage) gather(want int, t *time.Timer) {
	deadline := time.Now().Add(gatherTotal)
	for {
		s.mu.Lock()
		n, closed := len(s.pending), s.closed
		s.mu.Unlock()
		if n == 0 || n >= want || closed || !time.Now().Before(deadline) {
			return
		}
		t.Reset(min(gatherGap, time.Until(deadline)))
		select {
		case <-s.kick:
			t.Stop()
		case <-t.C:
			return
		}
	}
}

func (s *Storage) takeBatch() (batch []*appendCall, closed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, recs := 0, 0
	for n < len(s.pending) && (n == 0 || recs+len(s.pending[n].recs) <= s.cfg.MaxBatch) {
		recs += len(s.pending[n].recs)
		n++
	}
	batch = s.pending[:n:n]
	s.pending = s.pending[n:]
	if len(s.pending) == 0 {
		s.pending = nil
	}
	return batch, s.closed
}

// batchRows are the columns of one insert. Payloads travel as one bytea and
// metadata as one flat text array of key, value pairs, cut per row by the
// statement: an array of a thousand byteas costs the client several copies
// of every payload, these one. The inserter reuses them batch after batch.
type batchRows struct {
	topics   []string
	idx      []int32
	at       []time.Time
	uuids    []string
	pairs    []int32 // metadata pairs per row
	sizes    []int32 // payload bytes per row
	metadata []string
	payloads []byte
}

func (r *batchRows) reset() {
	r.topics, r.idx, r.at, r.uuids = r.topics[:0], r.idx[:0], r.at[:0], r.uuids[:0]
	r.pairs, r.sizes, r.metadata, r.payloads = r.pairs[:0], r.sizes[:0], r.metadata[:0], r.payloads[:0]
}

// insertBatch inserts every record of batch in one statement (one
// transaction, one commit), orders it, and hands each call its place. What
// an older transaction still open holds back waits in the orderer.
func (s *Storage) insertBatch(batch []*appendCall, rows *batchRows) {
	rows.reset()
	// The records of one transaction and topic carry one appended_at (the
	// partition key that the read finds them by): the latest of its calls'.
	stamp := make(map[string]time.Time)
	next := make(map[string]int)
	for _, c := range batch {
		if c.at.After(stamp[c.topic]) {
			stamp[c.topic] = c.at
		}
	}
	for _, c := range batch {
		c.idx = next[c.topic]
		next[c.topic] += len(c.recs)
		for i, r := range c.recs {
			rows.topics = append(rows.topics, c.topic)
			rows.idx = append(rows.idx, int32(c.idx+i))
			rows.at = append(rows.at, stamp[c.topic])
			rows.uuids = append(rows.uuids, r.UUID)
			rows.pairs = append(rows.pairs, int32(len(r.Metadata)))
			for k, v := range r.Metadata {
				rows.metadata = append(rows.metadata, k, v)
			}
			rows.sizes = append(rows.sizes, int32(len(r.Payload)))
			rows.payloads = append(rows.payloads, r.Payload...)
		}
	}
	xid, ord, ordErr, err := s.insert(stamp, rows)
	if err != nil {
		for _, c := range batch {
			c.committed <- err
		}
		return
	}
	if ordErr != nil {
		s.log.Error("Cannot order journal records; trying again", ordErr, nil)
	}
	for _, topic := range ord.topics {
		s.wakeReaders(topic)
	}
	byTopic := make(map[string][]*appendCall)
	for _, c := range batch {
		if p, ok := ord.placed[c.topic][xid]; ok {
			c.ordered <- p // before the commit's news: one wake-up
		} else {
			byTopic[c.topic] = append(byTopic[c.topic], c)
		}
		c.committed <- nil
	}
	// Calls of earlier batches that an older transaction held back may have
	// been placed by this ordering.
	for topic, placed := range ord.placed {
		s.ord.resolve(topic, placed)
	}
	if len(byTopic) > 0 {
		s.ord.add(xid, byTopic)
	}
}

// insert sends, in one round trip, the batch's insert and its commit, then
// a second transaction that orders the batch's topics: it starts once the
// commit is durable, so the batch is orderable unless an older transaction
// is still open. It first makes sure the topics' rows and the days'
// partitions exist; a partition retention dropped (under a clock that went
// back) is made again, once. err is the insert's; ordErr the ordering's,
// whose records are committed all the same. (The ordering waits at most
// its lock timeout, 1 s, for a lock: the callers' OrderWait starts after.)
func (s *Storage) insert(stamps map[string]time.Time, rows *batchRows) (xid uint64, ord *orderResult, ordErr, err error) {
	topics := make([]string, 0, len(stamps))
	for topic := range stamps {
		topics = append(topics, topic)
	}
	for attempt := 0; ; attempt++ {
		done := false
		err = s.call(func(ctx context.Context) error {
			for topic, at := range stamps {
				if err := s.ensureTopic(ctx, topic); err != nil {
					return err
				}
				if err := s.ensureDay(ctx, at); err != nil {
					return err
				}
			}
			b := &pgx.Batch{}
			b.Queue("BEGIN")
			b.Queue(s.q.insert, rows.topics, rows.idx, rows.at, rows.uuids, rows.pairs, rows.sizes, rows.metadata, rows.payloads).
				QueryRow(func(row pgx.Row) error {
					var id int64
					var set string
					err := row.Scan(&id, &set)
					xid = uint64(id)
					return err
				})
			b.Queue("COMMIT").Exec(func(pgconn.CommandTag) error {
				done = true
				return nil
			})
			ord = s.queueOrder(b, topics, nil)
			ordErr = s.pool.SendBatch(ctx, b).Close()
			return nil
		})
		s.inserts.Add(1)
		if !done {
			if err == nil {
				err = ordErr
			}
			var pgErr *pgconn.PgError
			if attempt == 0 && errors.As(err, &pgErr) && pgErr.Code == "23514" { // no partition for the row
				s.forgetDays()
				continue
			}
			return 0, nil, nil, fmt.Errorf("sinkbus: postgres journal append: %w", err)
		}
		return xid, ord, ordErr, nil
	}
}

func (s *Storage) ensureTopic(ctx context.Context, topic string) error {
	if _, ok := s.known.Load(topic); ok {
		return nil
	}
	if _, err := s.pool.Exec(ctx, s.q.ensureTopic, topic); err != nil {
		return err
	}
	s.known.Store(topic, struct{}{})
	return nil
}
