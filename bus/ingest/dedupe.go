package ingest

import (
	"container/list"
	"crypto/sha256"
	"sync"
	"time"

	"github.com/sinkbus/sinkbus/internal/clock"
)

// dedupe remembers the event ids published within a window, at most size
// of them, forgetting the oldest first. Its keys are event ids, which carry
// the tenant when senders name theirs (Handler.eventID).
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
	event     fingerprint // of the event published under uid
	at        time.Time
	done      chan struct{}
	settled   bool // under dedupe.mu
	published bool // set before done is closed
}

// fingerprint tells events apart: a uid sent again with another event is
// a conflict, not a duplicate.
type fingerprint [sha256.Size]byte

func fingerprintOf(name string, payload []byte) fingerprint {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{0})
	h.Write(payload)
	var f fingerprint
	h.Sum(f[:0])
	return f
}

// settled is the done channel of the entries remember makes: closed, shared.
var settled = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func newDedupe(window time.Duration, size int, c clock.Clock) *dedupe {
	return &dedupe{window: window, size: size, clock: c, entries: make(map[string]*list.Element), order: list.New()}
}

// reserve returns the entry of uid; owner is true when the caller made it,
// for the event fp, and must publish, then settle it.
func (d *dedupe) reserve(uid string, fp fingerprint) (e *seenEntry, owner bool) {
	now := d.clock.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.forget(func(old *seenEntry) bool { return now.Sub(old.at) >= d.window })
	if el, ok := d.entries[uid]; ok {
		return el.Value.(*seenEntry), false
	}
	d.forget(func(*seenEntry) bool { return d.order.Len() >= d.size }) // room for one more
	e = &seenEntry{uid: uid, event: fp, at: now, done: make(chan struct{})}
	d.entries[uid] = d.order.PushBack(e)
	return e, true
}

// forget drops the oldest entries while drop says so, under d.mu. One
// being published is never forgotten, nor those after it.
func (d *dedupe) forget(drop func(*seenEntry) bool) {
	for el := d.order.Front(); el != nil; el = d.order.Front() {
		old := el.Value.(*seenEntry)
		if !old.settled || !drop(old) {
			return
		}
		d.order.Remove(el)
		delete(d.entries, old.uid)
	}
}

// remember records uid as published, as the event fp, at at, as when it is
// read back from the journal; calls come in the journal's order, oldest
// first.
func (d *dedupe) remember(uid string, fp fingerprint, at time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if el, ok := d.entries[uid]; ok {
		d.order.Remove(el) // published again after its window: the later time counts
	}
	e := &seenEntry{uid: uid, event: fp, at: at, done: settled, settled: true, published: true}
	d.entries[uid] = d.order.PushBack(e)
	d.forget(func(*seenEntry) bool { return d.order.Len() > d.size })
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
