package replay

// DefaultSubscriptions returns how many subscriptions the journal's own
// Subscribe keeps.
func DefaultSubscriptions(j *Journal) int {
	if j.subs == nil {
		return 0
	}
	j.subs.mu.Lock()
	defer j.subs.mu.Unlock()
	return len(j.subs.subs)
}
