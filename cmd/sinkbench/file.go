package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/cmd/sinkbench/internal/bench"
	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/file"
)

func init() {
	register(benchCase{
		name: "file",
		about: "publish → journal → filter → chain → file sink (fsync on rotation, its default 50 MiB files), concurrency 8, " +
			"vs 8 goroutines appending the same envelope lines to one O_APPEND file through a shared 64 KiB bufio.Writer under a mutex, " +
			"flushed at the end of each round (no fsync: weaker than the sink, whose Publish returns once its line reached the OS). " +
			"Interleaved with them: the same pipeline into a no-op sink (the criterion: the file sink is not the pipeline's bottleneck " +
			"when the two pipelines run alike) and the file sink alone, Publish from 8 goroutines, vs the raw appends. " +
			"Each pipeline round runs on a fresh bus warmed with a tenth of its events, so the memory journal holds one round; " +
			"files removed between rounds and the temp dir at the end",
		setup: setupFile,
	})
}

func setupFile(quick bool) (ours, raw func() float64, cleanup func(), skip string) {
	n := 300_000
	if quick {
		n = 100_000
	}
	n -= n % bench.Concurrency

	dir, err := os.MkdirTemp("", "sinkbench-file-")
	bench.Must(err)
	oursDir := filepath.Join(dir, "ours")
	aloneDir := filepath.Join(dir, "alone")

	f, err := os.OpenFile(filepath.Join(dir, "raw.ndjson"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	bench.Must(err)
	w := bufio.NewWriterSize(f, 64<<10)
	var mu sync.Mutex
	msg := bench.Message()
	rawRound := func(n int) float64 {
		start := time.Now()
		var wg sync.WaitGroup
		for range bench.Concurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				line := make([]byte, 0, len(bench.Payload1K)+256)
				for range n / bench.Concurrency {
					// Each line encoded as it is written, as the sink does.
					line = append(sinks.AppendEnvelope(line[:0], msg), '\n')
					mu.Lock()
					_, err := w.Write(line)
					mu.Unlock()
					bench.Must(err)
				}
			}()
		}
		wg.Wait()
		bench.Must(w.Flush())
		return bench.PerSecond(n, time.Since(start))
	}

	// The sink alone: Publish of the message the bus would hand it.
	aloneRound := func(n int) float64 {
		sink, err := file.New(file.Config{Dir: aloneDir, Fsync: file.FsyncRotation}, sinks.Env{IntegrationID: "alone"})
		bench.Must(err)
		start := time.Now()
		bench.PublishAll(n, func(int) { bench.Must(sink.Publish("events", msg)) })
		elapsed := time.Since(start)
		bench.Must(sink.Close())
		bench.Must(os.RemoveAll(aloneDir))
		return bench.PerSecond(n, elapsed)
	}

	var oursRates, noopRates, aloneRates, rawRates []float64
	ours = func() float64 {
		defer func() { bench.Must(os.RemoveAll(oursDir)) }()
		o := pipelineRound(n, file.Config{Dir: oursDir, Fsync: file.FsyncRotation})
		oursRates = append(oursRates, o)
		return o
	}
	raw = func() float64 {
		bench.Must(f.Truncate(0))
		r := rawRound(n)
		rawRates = append(rawRates, r)
		noopRates = append(noopRates, pipelineRound(n, noopSink{&bench.Counter{}}))
		aloneRates = append(aloneRates, aloneRound(n))
		return r
	}
	warm := n / 10
	warm -= warm % bench.Concurrency
	rawRound(warm)
	aloneRound(warm)
	cleanup = func() {
		bench.Must(f.Close())
		bench.Must(os.RemoveAll(dir))
		if len(oursRates) == 0 || len(rawRates) == 0 { // -side: no ratios
			return
		}
		o, noop, alone, r := bench.Median(oursRates), bench.Median(noopRates), bench.Median(aloneRates), bench.Median(rawRates)
		// The criterion: the pipeline into the file sink over the same
		// pipeline into a no-op sink.
		fmt.Printf("case=file pipeline file_sink=%s noop_sink=%s ratio=%.2f\n", bench.Rate(o, ""), bench.Rate(noop, ""), o/noop)
		fmt.Printf("case=file sink_alone file_sink=%s raw=%s ratio=%.2f\n", bench.Rate(alone, ""), bench.Rate(r, ""), alone/r)
	}
	return ours, raw, cleanup, ""
}

// pipelineRound publishes n events through a fresh bus (memory journal,
// concurrency 8, as sinkBus) into sink and returns events per second,
// counting an event when the sink took it. The bus is warmed with n/10
// events first and stopped afterwards, both untimed.
func pipelineRound(n int, sink sinks.Config) float64 {
	d := &delivered{}
	b, stop := bench.RunBus(bus.Config{Sinks: noopRegistry(), Retention: -1, MemoryBytes: unboundedMemory, Observer: d})
	defer stop()
	_, err := b.Integrations().Create(context.Background(), bus.Integration{
		ID: "export", Observes: []string{"order.*"}, Concurrency: bench.Concurrency, Sink: sink,
		UnconfinedPaths: true, // a scratch directory of the benchmark's
	})
	bench.Must(err)
	round := func(n int) float64 {
		done := d.Expect(int64(n))
		start := time.Now()
		bench.PublishAll(n, func(int) {
			bench.Must(b.Publish(context.Background(), bench.Order))
		})
		d.wait(done)
		return bench.PerSecond(n, time.Since(start))
	}
	warm := n / 10
	round(warm - warm%bench.Concurrency)
	return round(n)
}
