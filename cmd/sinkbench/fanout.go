package main

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/cmd/sinkbench/internal/bench"
)

func init() {
	register(benchCase{
		name: "fanout",
		about: "CPU time per published event (publish to the last delivery) with 25 integrations each observing one of 25 event names " +
			"(five entities × five verbs), the events spread evenly over the names, vs one integration observing every name (*.*); " +
			"memory journal (unbounded MemoryBytes), no-op sinks at concurrency 8, so the figure is the bus's own cost per event; a fresh bus per round, " +
			"warmed with a tenth of its events; target <= 1.5",
		setup: setupFanout,
		unit:  "ns cpu/event",
	})
	register(benchCase{
		name: "catchup",
		about: "CPU time per event from Start to the last delivery for 25 integrations each observing one of 25 event names, catching up " +
			"a backlog published while they were stopped, vs one integration observing every name catching up the same backlog; " +
			"memory journal, no-op sinks at concurrency 8, a fresh bus per round: what passing over the names an integration does not " +
			"observe costs when it reads a backlog rather than waits at the head",
		setup: setupCatchup,
		unit:  "ns cpu/event",
	})
	register(benchCase{
		name: "tenants",
		about: "CPU time per published event with 25 tenants' integrations each observing every name, the events spread evenly over the tenants, " +
			"vs 25 integrations of the application each observing one of 25 names (fanout's many side): what keeping each tenant's events " +
			"to its own integrations costs beside keeping names apart; same bus, sinks and rounds as fanout",
		setup: setupTenants,
		unit:  "ns cpu/event",
	})
}

// fanoutMode is how fanoutRound's integrations split the events, and
// when they read them.
type fanoutMode int

const (
	byName   fanoutMode = iota // each observes one name, or one observes all
	byTenant                   // each is a tenant's, observing every name
	backlog                    // by name, read as a backlog once published
)

// fanoutNames are 25 event names: five entities, five verbs.
var fanoutNames = func() []string {
	var names []string
	for _, entity := range []string{"order", "cart", "customer", "product", "payment"} {
		for _, verb := range []string{"created", "updated", "deleted", "fulfilled", "cancelled"} {
			names = append(names, entity+"."+verb)
		}
	}
	return names
}()

func setupFanout(quick bool) (ours, raw func() float64, cleanup func(), skip string) {
	ours, raw, cleanup = setupRounds("fanout", quick,
		fanoutSide{"25_integrations", len(fanoutNames), byName}, fanoutSide{"1_integration", 1, byName})
	return ours, raw, cleanup, ""
}

func setupCatchup(quick bool) (ours, raw func() float64, cleanup func(), skip string) {
	ours, raw, cleanup = setupRounds("catchup", quick,
		fanoutSide{"25_integrations", len(fanoutNames), backlog}, fanoutSide{"1_integration", 1, backlog})
	return ours, raw, cleanup, ""
}

func setupTenants(quick bool) (ours, raw func() float64, cleanup func(), skip string) {
	ours, raw, cleanup = setupRounds("tenants", quick,
		fanoutSide{"25_tenants", len(fanoutNames), byTenant}, fanoutSide{"25_names", len(fanoutNames), byName})
	return ours, raw, cleanup, ""
}

// fanoutSide is one side of a case made of fanoutRounds.
type fanoutSide struct {
	label        string
	integrations int
	mode         fanoutMode
}

// setupRounds returns the sides of a case that compares two kinds of
// fanoutRound by their CPU time per event, and a cleanup that prints both
// sides' delivery rates and costs once both ran (not with -side).
func setupRounds(name string, quick bool, ours, raw fanoutSide) (oursRound, rawRound func() float64, cleanup func()) {
	n := 50_000
	if quick {
		n = 25_000
	}
	var costs [2]bench.Cost
	var rates [2][]float64
	round := func(s fanoutSide, i int) func() float64 {
		return func() float64 {
			rates[i] = append(rates[i], fanoutRound(s.integrations, n, s.mode, &costs[i]))
			return float64(costs[i].CPU.Nanoseconds()) / float64(costs[i].Events)
		}
	}
	cleanup = func() {
		if len(rates[0]) == 0 || len(rates[1]) == 0 {
			return
		}
		fmt.Printf("case=%s rate %s=%s %s=%s\n", name,
			ours.label, bench.Rate(bench.Median(rates[0]), ""), raw.label, bench.Rate(bench.Median(rates[1]), ""))
		fmt.Printf("case=%s cost %s=%s %s=%s\n", name, ours.label, &costs[0], raw.label, &costs[1])
	}
	return round(ours, 0), round(raw, 1), cleanup
}

// fanoutRound publishes n events, spread over fanoutNames (and, by tenant,
// over as many tenants), into a fresh bus with the given number of
// integrations (one per name or per tenant, or one for all), adds the
// round's CPU time to cost and returns the delivery rate. Each event must
// reach exactly the integration observing its name, or its tenant's. As a
// backlog, the integrations are stopped while the events are published,
// and the round counts from their Start.
func fanoutRound(integrations, n int, mode fanoutMode, cost *bench.Cost) float64 {
	ctx := context.Background()
	b, stop := bench.RunBus(bus.Config{Sinks: noopRegistry(), MemoryBytes: unboundedMemory})
	defer stop()
	counters := make([]*bench.Counter, integrations)
	for i := range counters {
		counters[i] = &bench.Counter{}
		observes, m := []string{"*.*"}, b.Integrations()
		switch {
		case mode == byTenant:
			m = m.Tenant(fanoutTenant(i))
		case integrations > 1:
			observes = []string{fanoutNames[i]}
		}
		_, err := m.Create(ctx, bus.Integration{
			ID: fmt.Sprintf("erp-%02d", i), Observes: observes, Concurrency: bench.Concurrency,
			Sink: noopSink{counters[i]},
		})
		bench.Must(err)
	}
	events := make([]bus.Event, len(fanoutNames))
	for i, name := range fanoutNames {
		events[i] = bus.Event{Name: name, Payload: bench.Payload1K}
		if mode == byTenant {
			// Each name's events are one tenant's: the same spread as by name.
			events[i].Tenant = fanoutTenant(i)
		}
	}
	ids := func(do func(context.Context, string) (bus.Integration, error)) {
		for i := range integrations {
			_, err := do(ctx, fmt.Sprintf("erp-%02d", i))
			bench.Must(err)
		}
	}
	round := func(n int, cost *bench.Cost) time.Duration {
		done := make([]<-chan struct{}, integrations)
		for i, c := range counters {
			done[i] = c.Expect(int64(share(n, integrations, i)))
		}
		publish := func() { bench.PublishAll(n, func(i int) { bench.Must(b.Publish(ctx, events[i%len(events)])) }) }
		if mode == backlog {
			ids(b.Integrations().Stop)
			publish()
		}
		runtime.GC()
		end, start := cost.Measure(n), time.Now()
		defer end()
		if mode == backlog {
			ids(b.Integrations().Start)
		} else {
			publish()
		}
		for i, d := range done {
			bench.Wait(d, bench.RoundLimit, func() string {
				return fmt.Sprintf("fanout: integration %d got %d events, want %d", i, counters[i].Count(), share(n, integrations, i))
			})
		}
		return time.Since(start)
	}
	round(n/10, &bench.Cost{})
	elapsed := round(n, cost)
	// No integration got more than its share.
	for i, c := range counters {
		if want := share(n/10, integrations, i) + share(n, integrations, i); c.Count() != int64(want) {
			bench.Must(fmt.Errorf("fanout: integration %d got %d events, want %d", i, c.Count(), want))
		}
	}
	return bench.PerSecond(n, elapsed)
}

// share is how many of n events, spread round-robin over len(fanoutNames)
// names, integration i of integrations observes.
func share(n, integrations, i int) int {
	if integrations == 1 {
		return n
	}
	k := len(fanoutNames)
	s := n / k
	if i < n%k {
		s++
	}
	return s
}

// fanoutTenant names the tenant of byTenant's integration i.
func fanoutTenant(i int) string { return fmt.Sprintf("tenant-%02d", i) }
