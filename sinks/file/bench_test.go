package file_test

import (
	"bufio"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/file"
)

// benchPayload makes lines of about 1 KiB, as BASELINES.md measures.
var benchPayload = `{"order_id":"o-1","pad":"` + strings.Repeat("x", 850) + `"}`

// parallel8 makes RunParallel use 8 goroutines, the bus's concurrency.
func parallel8(b *testing.B) {
	b.SetParallelism(max(1, 8/runtime.GOMAXPROCS(0)))
}

// BenchmarkFileSink is Publish from 8 goroutines, 1 KiB events, one tenant.
// Compare with BenchmarkRawAppend in the same run.
func BenchmarkFileSink(b *testing.B) {
	for _, policy := range []file.Fsync{file.FsyncRotation, file.FsyncBatch} {
		b.Run(string(policy), func(b *testing.B) {
			sink, err := file.New(file.Config{Dir: b.TempDir(), Fsync: policy}, sinks.Env{})
			if err != nil {
				b.Fatal(err)
			}
			msg := event("01JD3Q4ZK3V6T2Y8R5N0M1P2Q3", "acme", benchPayload)
			b.SetBytes(int64(len(sinks.AppendEnvelope(nil, msg)) + 1))
			b.ReportAllocs()
			parallel8(b)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := sink.Publish("t", msg); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			if err := sink.Close(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkRawAppend is the baseline: envelopes appended to a 64 KiB
// bufio.Writer on an O_APPEND file from 8 goroutines sharing one mutex.
// "buffered" writes when the buffer is full (no durability at all);
// "flush_each" writes every line to the OS, what the sink's "rotation"
// policy promises; "fsync_each" also syncs every line, the naive way to
// get what its "batch" policy promises.
func BenchmarkRawAppend(b *testing.B) {
	for _, mode := range []string{"buffered", "flush_each", "fsync_each"} {
		b.Run(mode, func(b *testing.B) {
			f, err := os.OpenFile(filepath.Join(b.TempDir(), "raw.ndjson"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			w := bufio.NewWriterSize(f, 64<<10)
			var mu sync.Mutex
			msg := event("01JD3Q4ZK3V6T2Y8R5N0M1P2Q3", "acme", benchPayload)
			b.SetBytes(int64(len(sinks.AppendEnvelope(nil, msg)) + 1))
			b.ReportAllocs()
			parallel8(b)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				line := make([]byte, 0, 2048)
				for pb.Next() {
					line = append(sinks.AppendEnvelope(line[:0], msg), '\n')
					mu.Lock()
					_, err := w.Write(line)
					if err == nil && mode != "buffered" {
						err = w.Flush()
					}
					if err == nil && mode == "fsync_each" {
						err = f.Sync()
					}
					mu.Unlock()
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			if err := w.Flush(); err != nil {
				b.Fatal(err)
			}
		})
	}
}
