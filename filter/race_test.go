//go:build race

package filter_test

// raceEnabled: the race detector drops sync.Pool items on purpose, so
// pooled memory is allocated again.
const raceEnabled = true
