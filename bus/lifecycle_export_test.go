package bus

import (
	"sync"

	"github.com/sinkbus/sinkbus/middleware"
)

// ReplaysUnderWay returns how many replays the running integration id holds
// on to: the ones whose range has not ended yet.
func ReplaysUnderWay(b *Bus, id string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, ok := b.runners[id]
	if !ok || r.live == nil {
		return 0
	}
	d := r.live
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.replays)
}

// HoldNextLogDrop makes the next Drop of the bus's integration log wait
// until release is called; entered is closed when it begins waiting.
func HoldNextLogDrop(b *Bus) (entered <-chan struct{}, release func()) {
	h := &heldDrop{LogStore: b.logs, entered: make(chan struct{}), release: make(chan struct{})}
	b.logs = h
	return h.entered, func() { close(h.release) }
}

type heldDrop struct {
	middleware.LogStore
	once             sync.Once
	entered, release chan struct{}
}

func (h *heldDrop) Drop(id string) error {
	held := false
	h.once.Do(func() { held = true })
	if held {
		close(h.entered)
		<-h.release
	}
	return h.LogStore.Drop(id)
}
