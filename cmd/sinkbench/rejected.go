package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/cmd/sinkbench/internal/bench"
	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/sinks"
)

func init() {
	register(benchCase{
		name: "rejected",
		about: "rejections of 1 MiB events through the bus with a DataDir (an in-process handler answering a permanent failure, " +
			"concurrency 8; each rejection stored in the file rejected store, synced before the event is acknowledged, 30 kept, " +
			"and logged), the events published while the integration is stopped and the round timed from Start to the last rejection; " +
			"vs 8 goroutines each appending an event's 1 MiB record to one O_APPEND file and fsyncing it before the next " +
			"(what storing a rejection durably costs at least); temp dir removed at the end",
		setup: setupRejected,
	})
}

// payload1M is a 1 MiB event payload, within the bus's default limit.
var payload1M = json.RawMessage(`{"note":"` + strings.Repeat("x", 1<<20-64) + `"}`)

// rejections is a bus.Observer counting the events stored as rejected.
type rejections struct {
	bus.NopObserver
	bench.Counter
}

func (r *rejections) Rejected(string, string, middleware.RejectedEvent) { r.Hit() }

// rejectingBus runs a bus in dir whose one integration, stopped, rejects
// every event at once; round publishes n 1 MiB events, starts it and
// returns the rejections per second until the last is stored.
func rejectingBus(dir string) (round func(n int) float64, stop func()) {
	obs := &rejections{}
	b, stop := bench.RunBus(bus.Config{DataDir: dir, Observer: obs})
	refuse := errors.New("422 unprocessable")
	_, err := b.Integrations().Create(context.Background(), bus.Integration{
		ID: "refusing", Status: bus.Stopped, Concurrency: bench.Concurrency,
		Sink: bus.HandlerFunc(func(context.Context, bus.Event) error { return sinks.Permanent(refuse) }),
	})
	bench.Must(err)
	round = func(n int) float64 {
		bench.PublishAll(n, func(int) {
			bench.Must(b.Publish(context.Background(), bus.Event{Name: "order.created", Payload: payload1M}))
		})
		done := obs.Expect(int64(n))
		start := time.Now()
		_, err := b.Integrations().Start(context.Background(), "refusing")
		bench.Must(err)
		bench.Wait(done, bench.RoundLimit, func() string { return fmt.Sprintf("%d rejections stored in all", obs.Count()) })
		elapsed := time.Since(start)
		_, err = b.Integrations().Stop(context.Background(), "refusing")
		bench.Must(err)
		return bench.PerSecond(n, elapsed)
	}
	return round, stop
}

func setupRejected(quick bool) (ours, raw func() float64, cleanup func(), skip string) {
	n := 300
	if quick {
		n = 100
	}
	dir, err := os.MkdirTemp("", "sinkbench-rejected-")
	bench.Must(err)
	round, stopBus := rejectingBus(filepath.Join(dir, "bus"))
	ours = func() float64 { return round(n) }

	f, err := os.OpenFile(filepath.Join(dir, "raw.records"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	bench.Must(err)
	record := append(append([]byte(nil), payload1M...), '\n')
	raw = func() float64 {
		start := time.Now()
		bench.PublishAll(n, func(int) {
			_, err := f.Write(record)
			bench.Must(err)
			bench.Must(f.Sync())
		})
		return bench.PerSecond(n, time.Since(start))
	}
	cleanup = func() {
		stopBus()
		bench.Must(f.Close())
		bench.Must(os.RemoveAll(dir))
	}
	return ours, raw, cleanup, ""
}
