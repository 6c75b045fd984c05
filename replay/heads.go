package replay

import "sync"

// heads are the readers with a Select that wait at the head of a topic,
// each on a channel of its own. An append wakes only those whose Select
// keeps one of its records: for the others the appending goroutine passes
// the records over in place (reader.passOver). With many integrations each
// observing a few names, most are not woken by most appends.
type heads struct {
	mu      sync.Mutex // taken after a reader's mu only with TryLock
	waiting map[string]map[*reader]chan struct{}
}

// watch registers r as waiting at the head of its topic and returns the
// channel closed when it is to look again.
func (h *heads) watch(r *reader) <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.waiting == nil {
		h.waiting = make(map[string]map[*reader]chan struct{})
	}
	rs := h.waiting[r.topic]
	if rs == nil {
		rs = make(map[*reader]chan struct{})
		h.waiting[r.topic] = rs
	}
	ch, ok := rs[r]
	if !ok {
		ch = make(chan struct{})
		rs[r] = ch
	}
	return ch
}

// unwatch forgets r: it stopped waiting for another reason.
func (h *heads) unwatch(r *reader) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.waiting[r.topic], r)
}

// appended wakes the readers waiting at the head of topic, but those that
// pass recs over in place; with recs nil (records appended elsewhere), all.
func (h *heads) appended(topic string, recs []*Record) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for r, ch := range h.waiting[topic] {
		if recs != nil && r.passOver(recs) {
			continue
		}
		close(ch)
		delete(h.waiting[topic], r)
	}
}

// passOver acknowledges recs, just appended, for a reader idle at the head
// whose Select passes over every one of them, and reports whether it did;
// if not (or if the reader is busy), the reader is to be woken and read
// them itself. It never waits for the reader's lock: the reader takes
// heads.mu with its own held.
func (r *reader) passOver(recs []*Record) bool {
	cfg := &r.c.cfg
	if cfg.Select == nil || !cfg.Until.IsZero() || cfg.UntilOffset != 0 || !r.mu.TryLock() {
		return false
	}
	defer r.mu.Unlock()
	if !r.watching || r.reading || len(r.buf) > 0 || r.end != 0 || r.ctx.Err() != nil || r.pos != recs[0].Offset {
		return false
	}
	for i, rec := range recs {
		if rec.Offset != r.pos+uint64(i) {
			return false
		}
		switch cfg.Select(recordView{rec}) {
		case Deliver:
			return false
		case Skip:
			if cfg.OnSkip != nil {
				return false // reported by the reader, outside any lock
			}
		}
	}
	from := r.pos
	r.pos += uint64(len(recs))
	r.markDone(from, r.pos)
	return true
}
