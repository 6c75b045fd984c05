package postgres

import (
	"context"
	"maps"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/jackc/pgx/v5"
)

// orderer holds the committed transactions whose Append calls wait for
// their offsets, per topic.
type orderer struct {
	mu      sync.Mutex
	waiting map[string][]*txWait
	asked   map[string]bool // topics others committed records to (requestOrder)
	kick    chan struct{}
	closing chan struct{}
	done    chan struct{}
	once    sync.Once
}

// txWait is one committed transaction's calls of one topic.
type txWait struct {
	xid   uint64
	calls []*appendCall
}

func (o *orderer) init() {
	o.waiting = make(map[string][]*txWait)
	o.kick = make(chan struct{}, 1)
	o.closing = make(chan struct{})
	o.done = make(chan struct{})
}

func (o *orderer) add(xid uint64, byTopic map[string][]*appendCall) {
	o.mu.Lock()
	for topic, calls := range byTopic {
		o.waiting[topic] = append(o.waiting[topic], &txWait{xid: xid, calls: calls})
	}
	o.mu.Unlock()
	select {
	case o.kick <- struct{}{}:
	default:
	}
}

func (o *orderer) close() { o.once.Do(func() { close(o.closing) }) }

// xids returns the transactions waiting in topic, as text (xid8's input).
func (o *orderer) xids(topic string) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]string, 0, len(o.waiting[topic]))
	for _, w := range o.waiting[topic] {
		out = append(out, strconv.FormatUint(w.xid, 10))
	}
	return out
}

func (o *orderer) topics() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Collect(maps.Keys(o.waiting))
}

// resolve hands the placed transactions' calls their places and reports
// whether some of topic still wait.
func (o *orderer) resolve(topic string, placed map[uint64]placement) (left bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	kept := o.waiting[topic][:0]
	for _, w := range o.waiting[topic] {
		p, ok := placed[w.xid]
		if !ok {
			kept = append(kept, w)
			continue
		}
		for _, c := range w.calls {
			c.ordered <- p
		}
	}
	if len(kept) == 0 {
		delete(o.waiting, topic)
		return false
	}
	o.waiting[topic] = kept
	return true
}

// Bounds of the wait between two attempts to order records held back by an
// older transaction that is still open.
const (
	orderRetryFirst = time.Millisecond
	orderRetryMax   = 200 * time.Millisecond
)

// orderLoop orders what this process committed as soon as it is committed,
// tries again while older transactions hold it back, and polls for what
// other processes appended (see poll).
func (s *Storage) orderLoop() {
	defer close(s.ord.done)
	poll := time.NewTicker(s.cfg.PollEvery)
	defer poll.Stop()
	retry := time.NewTimer(0)
	<-retry.C
	wait := time.Duration(0)
	seen := make(map[string]uint64)
	// What a process that died left unordered (an application's
	// transaction committed as it died) is ordered at once.
	s.poll(seen, false)
	for {
		select {
		case <-s.ord.kick:
		case <-retry.C:
		case <-poll.C:
			s.poll(seen, true)
		case <-s.ord.closing:
			s.orderWaiting()
			return
		}
		s.orderAsked()
		if !s.orderWaiting() {
			wait = 0
			continue
		}
		if wait = min(max(2*wait, orderRetryFirst), orderRetryMax); !retry.Stop() {
			select {
			case <-retry.C:
			default:
			}
		}
		retry.Reset(wait)
	}
}

// orderWaiting orders the topics this process has calls waiting in and
// hands them their places. It reports whether some still wait.
func (s *Storage) orderWaiting() (held bool) {
	for _, topic := range s.ord.topics() {
		n, placed, err := s.order(topic, s.ord.xids(topic))
		if err != nil {
			s.log.Error("Cannot order journal records; trying again", err, watermill.LogFields{"topic": topic})
			held = true
			continue
		}
		if n > 0 {
			s.wakeReaders(topic)
		}
		if s.ord.resolve(topic, placed) {
			held = true
		}
	}
	return held
}

// order gives every committed record of topic below the horizon its
// offset, notifies the other processes when it placed some, and returns
// where the transactions xids sit (placed now or before), in one round
// trip (see queueOrder).
func (s *Storage) order(topic string, xids []string) (ordered int64, placed map[uint64]placement, err error) {
	if xids == nil {
		xids = []string{}
	}
	b := &pgx.Batch{}
	res := s.queueOrder(b, []string{topic}, xids)
	err = s.call(func(ctx context.Context) error {
		// Should a statement fail, the connection is left in the failed
		// transaction and the pool discards it.
		return s.pool.SendBatch(ctx, b).Close()
	})
	return res.ordered, res.placed[topic], err
}

// orderResult is what the ordering queued by queueOrder found.
type orderResult struct {
	ordered int64
	placed  map[string]map[uint64]placement // topic -> transaction -> place
	topics  []string                        // those that got records
}

// queueOrder queues on b a transaction that orders topics (locked in name
// order, so that two processes never wait for each other's second) and
// reads where the transactions xids sit (nil: the one this session
// inserted last). Ordering is a function of the
// committed records alone (transaction id order, offsets from the topic's
// next one), so it commits without waiting for the disk: a crash that
// loses it loses nothing that the next ordering does not give again, the
// same places included; and a cursor saved past those offsets was flushed
// to the log after it.
func (s *Storage) queueOrder(b *pgx.Batch, topics, xids []string) *orderResult {
	res := &orderResult{placed: make(map[string]map[uint64]placement, len(topics))}
	sort.Strings(topics)
	b.Queue("BEGIN")
	b.Queue("SET LOCAL synchronous_commit = off")
	// Orderings hold the lock for milliseconds; anything longer (a
	// session holding the row by hand) is waited out by the orderer's
	// retries, not by the inserter.
	b.Queue("SET LOCAL lock_timeout = '1s'")
	for _, topic := range topics {
		b.Queue(s.q.lockTopic, topic)
	}
	for _, topic := range topics {
		payload := s.id + "\n" + topic
		if len(payload) > 7900 { // NOTIFY's limit is 8000 bytes: then "every topic"
			payload = s.id
		}
		b.Queue(s.q.order, topic, s.channel, payload, xids).QueryRow(func(row pgx.Row) error {
			var n, notified int64
			var ids, firsts []int64
			var ats []time.Time
			if err := row.Scan(&n, &notified, &ids, &firsts, &ats); err != nil {
				return err
			}
			if n > 0 {
				res.ordered += n
				res.topics = append(res.topics, topic)
			}
			placed := make(map[uint64]placement, len(ids))
			for i, id := range ids {
				placed[uint64(id)] = placement{first: uint64(firsts[i]), at: ats[i]}
			}
			res.placed[topic] = placed
			return nil
		})
	}
	b.Queue("COMMIT")
	return res
}

// poll looks at every topic: it orders what waits below the horizon (a
// writer that could not, or that died, left it) and wakes the readers of
// a topic whose head moved since the last look, in case a notification
// was missed. With ahead, it also makes tomorrow's partitions ahead of time.
func (s *Storage) poll(seen map[string]uint64, ahead bool) {
	type state struct {
		topic     string
		next      int64
		orderable bool
	}
	var topics []state
	err := s.call(func(ctx context.Context) error {
		rows, err := s.pool.Query(ctx, s.q.probe)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var st state
			var above bool
			if err := rows.Scan(&st.topic, &st.next, &st.orderable, &above); err != nil {
				return err
			}
			topics = append(topics, st)
		}
		return rows.Err()
	})
	if err != nil {
		s.log.Error("Cannot poll the journal", err, nil)
		return
	}
	for _, st := range topics {
		if st.orderable {
			if n, _, err := s.order(st.topic, nil); err != nil {
				s.log.Error("Cannot order journal records", err, watermill.LogFields{"topic": st.topic})
			} else if n > 0 {
				st.next += n
			}
		}
		if uint64(st.next) > seen[st.topic] {
			s.wakeReaders(st.topic) // at the first look too: harmless
			seen[st.topic] = uint64(st.next)
		}
	}
	if !ahead {
		return
	}
	if err := s.call(func(ctx context.Context) error { return s.ensureDay(ctx, time.Now().Add(24*time.Hour)) }); err != nil {
		s.log.Error("Cannot create tomorrow's journal partitions", err, nil)
	}
}
