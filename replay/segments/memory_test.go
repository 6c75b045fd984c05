package segments_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/replay"
	"github.com/sinkbus/sinkbus/replay/segments"
	"github.com/sinkbus/sinkbus/replay/storagetest"
)

func TestSegments_reading_a_large_backlog_keeps_memory_bounded(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 200k records")
	}
	const total, batch = 200_000, 1000
	heapInuse := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapInuse
	}
	base := heapInuse()
	s := openSegs(t, segments.Config{SegmentBytes: 1 << 20, TailCacheBytes: 256 << 10})
	payload := []byte(`{"order_id":"A-1001","sku":"SKU-1","qty":1,"price":"9.90","pad":"..."}`)
	clk := storagetest.NewStepClock(time.Millisecond)
	recs := make([]*replay.Record, batch)
	for i := 0; i < total; i += batch {
		for j := range recs {
			recs[j] = &replay.Record{UUID: "0000000000000000000000000", Metadata: map[string]string{"name": "order.created"}, Payload: payload}
		}
		require.NoError(t, s.Append("orders", recs, clk.Now))
	}

	peak := heapInuse()
	t.Logf("heap in use after appending: %d KiB more than before opening", (peak-base)>>10)
	next, reads := uint64(1), 0
	for {
		got, err := s.Read("orders", next, 500)
		require.NoError(t, err)
		if len(got) == 0 {
			break
		}
		require.Equal(t, next, got[0].Offset)
		require.Equal(t, string(payload), string(got[len(got)-1].Payload))
		next = got[len(got)-1].Offset + 1
		if reads++; reads%20 == 0 {
			peak = max(peak, heapInuse())
		}
	}
	require.Equal(t, uint64(total+1), next)
	// The data is about 25 MB on disk and 60 MB as records: holding even a
	// tenth of it would break the bound, which counts the tail cache.
	assert.Less(t, peak-base, uint64(6<<20), "heap grew from %d to %d bytes while reading", base, peak)
	t.Logf("heap in use: %d KiB before opening, peak %d KiB while reading", base>>10, peak>>10)
}
