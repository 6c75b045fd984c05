package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/cmd/sinkbench/internal/bench"
	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/replay"
)

// unboundedMemory is the journal's MemoryBytes in the throughput cases: they
// publish faster than they deliver, and a bound would drop the backlog
// whose delivery they time. The memory case measures the bound.
const unboundedMemory = -1

// memoryChildEnv makes the process the child that runs the memory case: a
// heap of its own, not one other cases ran in first.
const memoryChildEnv = "SINKBENCH_MEMORY_CHILD"

// memoryWindow is how many events the memory case's publishers let wait for
// delivery at most: an application whose integration keeps up.
const memoryWindow = 10_000

func init() {
	register(benchCase{
		name: "memory",
		about: "heap (HeapInuse and HeapAlloc after delivery and runtime.GC, and the process RSS) of a fresh child process after " +
			"8 publishers put 1M events of 1 KiB (250k with -quick) through an in-memory bus (no DataDir, the default MemoryBytes) " +
			"with one integration, an in-process handler, keeping at most 10,000 undelivered; target: heap within the default bound + 50 MiB",
		report: reportMemory,
	})
}

func reportMemory(quick bool) (line, skip string) {
	if os.Getenv(memoryChildEnv) != "" {
		return runMemory(quick), ""
	}
	if _, err := os.Stat("/proc/self/status"); err != nil {
		return "", "needs /proc/self/status (Linux)"
	}
	exe, err := os.Executable()
	bench.Must(err)
	args := []string{"-case", "memory"}
	if quick {
		args = append(args, "-quick")
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), memoryChildEnv+"=1")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	bench.Must(err)
	for l := range strings.Lines(string(out)) {
		if strings.HasPrefix(l, "case=memory ") {
			return strings.TrimSpace(l), ""
		}
	}
	bench.Must(fmt.Errorf("memory child printed no result: %q", out))
	return "", ""
}

// runMemory is the child's side: it delivers the events and measures itself.
func runMemory(quick bool) string {
	const full = 1_000_000
	n, note := full, ""
	if quick {
		n, note = 250_000, fmt.Sprintf(" (-quick; the full run publishes %d)", full)
	}
	n -= n % bench.Concurrency

	// What the zero Config builds, passed in to read its size at the end.
	mem := replay.NewMemory()
	b, stopBus := bench.RunBus(bus.Config{Storage: mem})
	defer stopBus()
	ctx := context.Background()
	var delivered atomic.Int64
	slots := make(chan struct{}, memoryWindow)
	allDelivered := make(chan struct{})
	bench.Must(b.Handle("memory", []string{"order.*"}, func(context.Context, bus.Event) error {
		<-slots
		if delivered.Add(1) == int64(n) {
			close(allDelivered)
		}
		return nil
	}))

	start := time.Now()
	bench.PublishAll(n, func(int) {
		slots <- struct{}{}
		bench.Must(b.Publish(ctx, bench.Order))
	})
	select {
	case <-allDelivered:
	case <-time.After(time.Minute):
		bench.Must(fmt.Errorf("memory: %d of %d events delivered after a minute", delivered.Load(), n))
	}
	elapsed := time.Since(start)
	lost, err := lostEvents(b, "memory")
	bench.Must(err)

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss, hwm := procMemory()
	held := mem.Size()
	target := uint64(replay.DefaultMemoryBytes + 50<<20)
	verdict := "within"
	if ms.HeapInuse > target {
		verdict = "OVER"
	}
	return fmt.Sprintf("case=memory heap_inuse=%s heap_alloc=%s rss=%s hwm=%s journal=%s events=%d delivered=%d lost=%d payload=1KiB rate=%.0f/s target=<=%s (%s)%s",
		mib(ms.HeapInuse), mib(ms.HeapAlloc), mib(rss), mib(hwm), mib(uint64(held)), n, delivered.Load(), lost,
		bench.PerSecond(n, elapsed), mib(target), verdict, note)
}

// lostEvents sums what the integration's log says it lost.
func lostEvents(b *bus.Bus, id string) (int, error) {
	entries, err := b.Integrations().Log(context.Background(), id)
	if err != nil {
		return 0, err
	}
	lost := 0
	for _, e := range entries {
		if e.Action != middleware.ActionRetentionLoss {
			continue
		}
		var n int
		if _, err := fmt.Sscanf(e.Reason, "%d ", &n); err != nil {
			return 0, errors.Join(errors.New("memory: unreadable loss entry "+e.Reason), err)
		}
		lost += n
	}
	return lost, nil
}
