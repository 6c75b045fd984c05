package segments_test

import (
	"bufio"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/replay"
	"github.com/sinkbus/sinkbus/replay/segments"
)

// BenchmarkAppend64: 64 goroutines each appending one 1 KiB record at a time,
// with SyncGroupCommit (every Append returns after an fsync). Compare with
// BenchmarkRawNDJSON in the same run.
func BenchmarkAppend64(b *testing.B) {
	s := openSegs(b, segments.Config{Dir: b.TempDir()})
	payload := make([]byte, 1024)
	for i := range payload {
		payload[i] = 'a' + byte(i%26)
	}
	meta := map[string]string{"name": "order.fulfilled", "tenant": "acme", "published_at": "2026-03-01T12:00:00Z"}
	b.SetParallelism((64 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rec := &replay.Record{UUID: "01JDQ5Z8C3ZK3N8Q6R1S2T3V4W", Metadata: meta, Payload: payload}
			if err := s.Append("bench", []*replay.Record{rec}, time.Now); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
}

// BenchmarkRawNDJSON is the raw baseline: 1 KiB lines through a 64 KiB
// bufio.Writer to an O_APPEND file, fsync every 1000 lines, one goroutine.
func BenchmarkRawNDJSON(b *testing.B) {
	f, err := os.OpenFile(filepath.Join(b.TempDir(), "raw.ndjson"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	require.NoError(b, err)
	defer f.Close()
	w := bufio.NewWriterSize(f, 64<<10)
	line := make([]byte, 1024)
	for i := range line {
		line[i] = 'a' + byte(i%26)
	}
	line[len(line)-1] = '\n'
	b.SetBytes(int64(len(line)))
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := w.Write(line); err != nil {
			b.Fatal(err)
		}
		if i%1000 == 999 {
			if err := w.Flush(); err != nil {
				b.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
		}
	}
	require.NoError(b, w.Flush())
	require.NoError(b, f.Sync())
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
}
