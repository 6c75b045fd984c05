package replay

import (
	"bytes"
	"maps"
	"sync"
)

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
// The records those skip go to their OnSkip once every lock is released:
// an OnSkip may append.
func (h *heads) appended(topic string, recs []*Record) {
	var reports []skipReport
	h.mu.Lock()
	for r, ch := range h.waiting[topic] {
		if recs != nil && r.passOver(recs, &reports) {
			continue
		}
		close(ch)
		delete(h.waiting[topic], r)
	}
	h.mu.Unlock()
	for _, s := range reports {
		if s.rec == nil {
			s.r.c.cfg.CountSkipped(s.n)
			continue
		}
		rec := *s.rec // shares nothing with the appended record, as a read one
		rec.Metadata = maps.Clone(rec.Metadata)
		rec.Payload = bytes.Clone(rec.Payload)
		s.r.c.cfg.OnSkip(&rec)
	}
}

// skipReport is a record passed over in place that OnSkip is to see, or,
// without one, how many CountSkipped is to count.
type skipReport struct {
	r   *reader
	rec *Record
	n   int
}

// passOver acknowledges recs, just appended, for a reader idle at the head
// whose Select passes over every one of them, adds those to report to
// reports, and tells whether it did;
// if not (or if the reader is busy), the reader is to be woken and read
// them itself. It never waits for the reader's lock: the reader takes
// heads.mu with its own held.
func (r *reader) passOver(recs []*Record, reports *[]skipReport) bool {
	cfg := &r.c.cfg
	if cfg.Select == nil || !cfg.Until.IsZero() || cfg.UntilOffset != 0 || !r.mu.TryLock() {
		return false
	}
	defer r.mu.Unlock()
	if !r.watching || r.reading || len(r.buf) > 0 || r.end != 0 || r.ctx.Err() != nil || r.pos != recs[0].Offset {
		return false
	}
	reported, skips := len(*reports), 0
	for i, rec := range recs {
		if rec.Offset != r.pos+uint64(i) {
			*reports = (*reports)[:reported]
			return false
		}
		switch cfg.Select(recordView{rec}) {
		case Deliver:
			*reports = (*reports)[:reported]
			return false
		case Skip:
			switch {
			case cfg.OnSkip != nil:
				*reports = append(*reports, skipReport{r: r, rec: rec})
			case cfg.CountSkipped != nil:
				skips++
			}
		}
	}
	if skips > 0 {
		*reports = append(*reports, skipReport{r: r, n: skips})
	}
	from := r.pos
	r.pos += uint64(len(recs))
	r.markDone(from, r.pos)
	return true
}
