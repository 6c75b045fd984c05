package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/cmd/sinkbench/internal/bench"
)

func init() {
	register(benchCase{
		name: "drain",
		about: "a backlog of 100,000 durable 1 KiB events (25,000 with -quick) in a DataDir, published by 64 publishers while the only " +
			"integration, a signed webhook at concurrency 8, was stopped, then drained: events over the time from Start to the last " +
			"receipt, vs the same backlog in the memory journal (unbounded MemoryBytes); a fresh bus (and DataDir) per round, the backlog in the page cache " +
			"as a running process finds it; target >= 0.9",
		setup: setupDrain,
	})
}

func setupDrain(quick bool) (ours, raw func() float64, cleanup func(), skip string) {
	n := 100_000
	if quick {
		n = 25_000
	}
	dir, err := os.MkdirTemp("", "sinkbench-drain-")
	bench.Must(err)
	recv := bench.NewReceiver()
	durableEP, memoryEP := recv.Endpoint("datadir"), recv.Endpoint("memory")
	var durableCost, memoryCost bench.Cost
	ours = func() float64 {
		data := filepath.Join(dir, "bus")
		defer func() { bench.Must(os.RemoveAll(data)) }()
		return drainRound(bus.Config{DataDir: data}, durableEP, n, &durableCost)
	}
	raw = func() float64 {
		return drainRound(bus.Config{MemoryBytes: unboundedMemory}, memoryEP, n, &memoryCost)
	}
	cleanup = func() {
		recv.Close()
		bench.Must(os.RemoveAll(dir))
		fmt.Printf("case=drain backlog=%d cost datadir=%s memory=%s\n", n, &durableCost, &memoryCost)
	}
	return ours, raw, cleanup, ""
}

// drainRound builds a backlog of n events on a fresh bus on cfg whose
// webhook integration is stopped, starts it, and returns the events
// delivered per second until the receiver counted the last one.
func drainRound(cfg bus.Config, ep *bench.Endpoint, n int, cost *bench.Cost) float64 {
	ctx := context.Background()
	b, stop := bench.WebhookBus(cfg, ep.URL, true)
	defer stop()
	bench.PublishFrom(journalPublishers, n, func(int) { bench.Must(b.Publish(ctx, bench.Order)) })
	lag, err := b.Integrations().Lag(ctx, "erp")
	bench.Must(err)
	if lag != uint64(n) {
		bench.Must(fmt.Errorf("drain: the stopped integration lags %d events, want %d", lag, n))
	}

	runtime.GC()
	done := ep.Expect(int64(n))
	defer cost.Measure(n)()
	start := time.Now()
	_, err = b.Integrations().Start(ctx, "erp")
	bench.Must(err)
	bench.Wait(done, bench.RoundLimit, func() string {
		return fmt.Sprintf("drain: the receiver counted %d requests in all", ep.Count())
	})
	return bench.PerSecond(n, time.Since(start))
}
