package bus

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
