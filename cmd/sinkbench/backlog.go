package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/cmd/sinkbench/internal/bench"
)

// backlogChildEnv gives the child process that runs the backlog case its
// DataDir. A child, because the RSS of a process that ran other cases first
// would not be the backlog's; the parent owns the directory, so a child that
// dies still has its gigabyte removed.
const backlogChildEnv = "SINKBENCH_BACKLOG_DIR"

func init() {
	register(benchCase{
		name: "backlog",
		about: "process RSS (VmRSS after runtime.GC, and peak VmHWM, from /proc/self/status) of a fresh child process " +
			"after 64 bench.Concurrency put 1M durable 1 KiB events (250k with -quick) into a bus whose only integration is stopped; target < 100 MiB",
		report: reportBacklog,
	})
}

func reportBacklog(quick bool) (line, skip string) {
	if dir := os.Getenv(backlogChildEnv); dir != "" {
		return runBacklog(dir, quick), ""
	}
	if _, err := os.Stat("/proc/self/status"); err != nil {
		return "", "needs /proc/self/status (Linux)"
	}
	exe, err := os.Executable()
	bench.Must(err)
	dir, err := os.MkdirTemp("", "sinkbench-backlog-")
	bench.Must(err)
	args := []string{"-case", "backlog"}
	if quick {
		args = append(args, "-quick")
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), backlogChildEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	bench.Must(errors.Join(err, os.RemoveAll(dir)))
	for l := range strings.Lines(string(out)) {
		if strings.HasPrefix(l, "case=backlog ") {
			return strings.TrimSpace(l), ""
		}
	}
	bench.Must(fmt.Errorf("backlog child printed no result: %q", out))
	return "", ""
}

// runBacklog is the child's side: it builds the backlog and measures itself.
func runBacklog(dir string, quick bool) string {
	const full = 1_000_000
	n, note := full, ""
	if quick {
		// Still over twice the target on disk: a backlog held in memory
		// would show.
		n, note = 250_000, fmt.Sprintf(" (-quick; the full run publishes %d)", full)
	}
	startRSS, _ := procMemory()

	b, stopBus := bench.RunBus(bus.Config{DataDir: dir})
	defer stopBus()
	ctx := context.Background()
	_, err := b.Integrations().Create(ctx, bus.Integration{
		ID: "stopped", Status: bus.Stopped,
		Sink: bus.HandlerFunc(func(context.Context, bus.Event) error { return nil }),
	})
	bench.Must(err)

	start := time.Now()
	bench.PublishFrom(journalPublishers, n, func(int) {
		bench.Must(b.Publish(ctx, bench.Order))
	})
	elapsed := time.Since(start)
	lag, err := b.Integrations().Lag(ctx, "stopped")
	bench.Must(err)
	if lag != uint64(n) {
		bench.Must(fmt.Errorf("backlog: the stopped integration lags %d events, want %d", lag, n))
	}
	runtime.GC()
	rss, hwm := procMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return fmt.Sprintf("case=backlog rss=%s hwm=%s rss_at_start=%s heap_inuse=%s events=%d backlog=%d payload=1KiB journal_on_disk=%s publish=%.0f/s target=<100MiB%s",
		mib(rss), mib(hwm), mib(startRSS), mib(ms.HeapInuse), n, lag, mib(dirBytes(filepath.Join(dir, "journal"))), bench.PerSecond(n, elapsed), note)
}

// procMemory returns the process's resident set and its peak, in bytes.
func procMemory() (rss, hwm uint64) {
	b, err := os.ReadFile("/proc/self/status")
	bench.Must(err)
	for l := range strings.Lines(string(b)) {
		var kib uint64
		if _, err := fmt.Sscanf(l, "VmRSS: %d kB", &kib); err == nil {
			rss = kib << 10
		} else if _, err := fmt.Sscanf(l, "VmHWM: %d kB", &kib); err == nil {
			hwm = kib << 10
		}
	}
	return rss, hwm
}

func dirBytes(dir string) uint64 {
	var n uint64
	bench.Must(filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			n += uint64(info.Size())
		}
		return err
	}))
	return n
}

func mib(b uint64) string { return fmt.Sprintf("%.1fMiB", float64(b)/(1<<20)) }
