package main

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/cmd/sinkbench/internal/bench"
)

// journalPublishers is the number of concurrent publishers of the journal
// and backlog cases: enough for group commit to share each fsync widely.
const journalPublishers = 64

func init() {
	register(benchCase{
		name: "journal",
		about: "durable bus.Publish (DataDir, group commit: each call returns after the fsync covering it), 1 KiB events, 64 bench.Concurrency, " +
			"one stopped integration, vs 64 goroutines appending the same 1 KiB lines to one O_APPEND NDJSON file through a shared 64 KiB bufio.Writer " +
			"under a mutex, flush+fsync every 1000 lines with the mutex held (weaker: a line is not on disk when its write returns); " +
			"both sides append to the same files across rounds, in one temp dir removed at the end",
		setup: setupJournal,
	})
}

func setupJournal(quick bool) (ours, raw func() float64, cleanup func(), skip string) {
	n := 200_000
	if quick {
		n = 100_000
	}

	dir, err := os.MkdirTemp("", "sinkbench-journal-")
	bench.Must(err)
	// The durable default: segments.Storage in DataDir with SyncGroupCommit. One
	// stopped integration makes the journal keep a backlog, as it would in
	// production, without a consumer competing for the CPU: this measures
	// the write path.
	b, stopBus := bench.RunBus(bus.Config{DataDir: filepath.Join(dir, "bus")})
	_, err = b.Integrations().Create(context.Background(), bus.Integration{
		ID: "stopped", Status: bus.Stopped,
		Sink: bus.HandlerFunc(func(context.Context, bus.Event) error { return nil }),
	})
	bench.Must(err)
	ours = func() float64 {
		start := time.Now()
		bench.PublishFrom(journalPublishers, n, func(int) {
			bench.Must(b.Publish(context.Background(), bench.Order))
		})
		return bench.PerSecond(n, time.Since(start))
	}

	f, err := os.OpenFile(filepath.Join(dir, "raw.ndjson"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	bench.Must(err)
	w := bufio.NewWriterSize(f, 64<<10)
	line := append(append(make([]byte, 0, len(bench.Payload1K)+1), bench.Payload1K...), '\n')
	var mu sync.Mutex
	lines := 0
	raw = func() float64 {
		start := time.Now()
		bench.PublishFrom(journalPublishers, n, func(int) {
			mu.Lock()
			defer mu.Unlock()
			_, err := w.Write(line)
			bench.Must(err)
			if lines++; lines%1000 == 0 {
				bench.Must(w.Flush())
				bench.Must(f.Sync())
			}
		})
		mu.Lock()
		bench.Must(w.Flush())
		bench.Must(f.Sync())
		mu.Unlock()
		return bench.PerSecond(n, time.Since(start))
	}
	cleanup = func() {
		stopBus()
		bench.Must(f.Close())
		bench.Must(os.RemoveAll(dir))
	}
	return ours, raw, cleanup, ""
}
