package ingest

import (
	"container/list"
	"sync"
	"time"

	"github.com/sinkbus/sinkbus/internal/clock"
)

// dedupe remembers the uids published within a window, at most size of
// them, forgetting the oldest first.
type dedupe struct {
	window time.Duration
	size   int
	clock  clock.Clock

	mu      sync.Mutex
	entries map[string]*list.Element // of *seenEntry
	order   *list.List               // oldest first
}

// seenEntry is one uid: being published until done is closed, then
// published or not.
type seenEntry struct {
	uid       string
	at        time.Time
	done      chan struct{}
	settled   bool // under dedupe.mu
	published bool // set before done is closed
}

func newDedupe(window time.Duration, size int, c clock.Clock) *dedupe {
	return &dedupe{window: window, size: size, clock: c, entries: make(map[string]*list.Element), order: list.New()}
}

// reserve returns the entry of uid; owner is true when the caller made it
// and must publish, then settle it.
func (d *dedupe) reserve(uid string) (e *seenEntry, owner bool) {
	now := d.clock.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	for el := d.order.Front(); el != nil; el = d.order.Front() {
		old := el.Value.(*seenEntry)
		if !old.settled || d.order.Len() < d.size && now.Sub(old.at) < d.window {
			break // one being published is never forgotten
		}
		d.order.Remove(el)
		delete(d.entries, old.uid)
	}
	if el, ok := d.entries[uid]; ok {
		return el.Value.(*seenEntry), false
	}
	e = &seenEntry{uid: uid, at: now, done: make(chan struct{})}
	d.entries[uid] = d.order.PushBack(e)
	return e, true
}

// settle records the outcome of publishing e's uid; a failed one is
// forgotten, so that the sender's retry publishes it.
func (d *dedupe) settle(e *seenEntry, published bool) {
	d.mu.Lock()
	e.settled, e.published = true, published
	if !published {
		if el, ok := d.entries[e.uid]; ok && el.Value == e {
			d.order.Remove(el)
			delete(d.entries, e.uid)
		}
	}
	d.mu.Unlock()
	close(e.done)
}
