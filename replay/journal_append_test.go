package replay_test

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/internal/clock"
	"github.com/sinkbus/sinkbus/replay"
)

// Append recycles its bookkeeping, the time function the storage calls
// among it: two journals on clocks a year apart, appended to at once from
// many goroutines, stamp every record with their own clock's time.
func TestJournal_Append_stamps_with_its_own_clock_under_concurrency(t *testing.T) {
	start := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	clocks := []time.Time{start, start.AddDate(1, 0, 0)}
	storages := make([]*replay.Memory, len(clocks))
	journals := make([]*replay.Journal, len(clocks))
	for i, at := range clocks {
		storages[i] = replay.NewMemory()
		j, err := replay.Open(replay.Config{Storage: storages[i], Clock: clock.NewFake(at), CompactEvery: -1})
		require.NoError(t, err)
		t.Cleanup(func() { _ = j.Close() })
		journals[i] = j
	}
	const goroutines, each = 8, 200
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range each {
				j := journals[(g+n)%len(journals)]
				id := strconv.Itoa(g) + "-" + strconv.Itoa(n)
				if err := j.Append("t", &replay.Record{UUID: id, Payload: []byte(`{}`)}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	total := 0
	for i, st := range storages {
		recs, err := st.Read("t", 1, goroutines*each)
		require.NoError(t, err)
		total += len(recs)
		for _, r := range recs {
			assert.True(t, r.Time.Equal(clocks[i]), "record %s of journal %d stamped %s", r.UUID, i, r.Time)
		}
	}
	assert.Equal(t, goroutines*each, total)
}
