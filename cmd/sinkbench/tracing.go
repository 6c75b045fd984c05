package main

import (
	"context"
	"fmt"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/cmd/sinkbench/internal/bench"
)

func init() {
	register(benchCase{
		name: "tracing",
		about: "the webhook case's pipeline traced by the OpenTelemetry SDK (every span sampled, batched to an exporter that drops them) " +
			"vs the same pipeline without a TracerProvider; the cost line adds a no-op provider's",
		setup: setupTracing,
	})
}

func setupTracing(quick bool) (ours, raw func() float64, cleanup func(), skip string) {
	n := 20_000
	if quick {
		n = 5_000
	}
	n -= n % bench.Concurrency

	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()),
		sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	recv := bench.NewReceiver()
	type side struct {
		round func() float64
		cost  *bench.Cost
		stop  func()
	}
	start := func(name string, cfg bus.Config) side {
		ep := recv.Endpoint(name)
		cfg.Retention, cfg.MemoryBytes = -1, unboundedMemory
		b, stop := bench.WebhookBus(cfg, ep.URL, false)
		cost := &bench.Cost{}
		return side{round: func() float64 {
			done := ep.Expect(int64(n))
			defer cost.Measure(n)()
			begin := time.Now()
			bench.PublishOrders(b, n)
			<-done
			return bench.PerSecond(n, time.Since(begin))
		}, cost: cost, stop: stop}
	}
	traced := start("traced", bus.Config{TracerProvider: tp})
	plain := start("untraced", bus.Config{})
	nop := start("noop", bus.Config{TracerProvider: noop.NewTracerProvider()})
	ours = func() float64 {
		nop.round() // its cost only, interleaved with the others
		return traced.round()
	}
	raw = plain.round
	cleanup = func() {
		traced.stop()
		plain.stop()
		nop.stop()
		recv.Close()
		bench.Must(tp.Shutdown(context.Background()))
		fmt.Printf("case=tracing cost traced=%s untraced=%s noop-provider=%s\n", traced.cost, plain.cost, nop.cost)
	}
	return ours, raw, cleanup, ""
}
