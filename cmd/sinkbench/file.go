package main

import (
	"bufio"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/file"
)

func init() {
	register(benchCase{
		name: "file",
		about: "publish → journal → filter → chain → file sink (fsync on rotation, its default 50 MiB files), concurrency 8, " +
			"vs 8 goroutines appending the same envelope lines to one O_APPEND file through a shared 64 KiB bufio.Writer under a mutex, " +
			"flushed at the end of each round (no fsync: weaker than the sink, whose Publish returns once its line reached the OS); " +
			"files removed between rounds and the temp dir at the end",
		setup: setupFile,
	})
}

func setupFile(quick bool) (ours, raw func() float64, cleanup func(), skip string) {
	n := 300_000
	if quick {
		n = 100_000
	}
	n -= n % publishers

	dir, err := os.MkdirTemp("", "sinkbench-file-")
	must(err)
	oursDir := filepath.Join(dir, "ours")
	oursRound, stopBus := sinkBus("export", file.Config{Dir: oursDir, Fsync: file.FsyncRotation})

	f, err := os.OpenFile(filepath.Join(dir, "raw.ndjson"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	must(err)
	w := bufio.NewWriterSize(f, 64<<10)
	var mu sync.Mutex
	msg := busMessage()
	rawRound := func(n int) float64 {
		start := time.Now()
		var wg sync.WaitGroup
		for range publishers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				line := make([]byte, 0, len(payload1K)+256)
				for range n / publishers {
					// Each line encoded as it is written, as the sink does.
					line = append(sinks.AppendEnvelope(line[:0], msg), '\n')
					mu.Lock()
					_, err := w.Write(line)
					mu.Unlock()
					must(err)
				}
			}()
		}
		wg.Wait()
		must(w.Flush())
		return perSecond(n, time.Since(start))
	}

	// Untimed: the previous rounds' files go, so that a long run does not
	// fill the disk. The sink's open file stays; finished ones are its past.
	ours = func() float64 {
		finished, err := filepath.Glob(filepath.Join(oursDir, "*", "*.export"))
		must(err)
		for _, path := range finished {
			must(os.Remove(path))
		}
		return oursRound(n)
	}
	raw = func() float64 {
		must(f.Truncate(0))
		return rawRound(n)
	}
	warm := n / 10
	warm -= warm % publishers
	oursRound(warm)
	rawRound(warm)
	cleanup = func() {
		stopBus()
		must(f.Close())
		must(os.RemoveAll(dir))
	}
	return ours, raw, cleanup, ""
}
