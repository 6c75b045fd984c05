package main

import (
	"fmt"
	"time"

	"github.com/sinkbus/sinkbus/cmd/sinkbench/internal/bench"
	"github.com/sinkbus/sinkbus/filter"
)

func init() {
	register(benchCase{
		name:   "filter",
		about:  "match one event name against 10,000 observes patterns (ours) vs against 10 (raw): flat when the ratio is near 1",
		report: reportFilter,
	})
}

// patterns returns n distinct patterns in the shapes users write: exact
// names, one-segment and multi-segment wildcards.
func patterns(n int) []string {
	out := make([]string, 0, n)
	for i := 0; len(out) < n; i++ {
		switch i % 3 {
		case 0:
			out = append(out, fmt.Sprintf("entity%d.event%d", i, i))
		case 1:
			out = append(out, fmt.Sprintf("entity%d.*", i))
		default:
			out = append(out, fmt.Sprintf("entity%d.**.done", i))
		}
	}
	return out
}

func matchRate(f *filter.Filter, names []string, d time.Duration) (perSec float64, nsPer float64) {
	n := 0
	start := time.Now()
	for time.Since(start) < d {
		for range 1000 {
			f.Match(names[n%len(names)], nil)
			n++
		}
	}
	el := time.Since(start)
	return bench.PerSecond(n, el), float64(el.Nanoseconds()) / float64(n)
}

func reportFilter(quick bool) (string, string) {
	round := time.Second
	rounds := 7
	if quick {
		round, rounds = 300*time.Millisecond, 3
	}
	big, err := filter.Compile(patterns(10_000), filter.Conditions{})
	bench.Must(err)
	small, err := filter.Compile(patterns(10), filter.Conditions{})
	bench.Must(err)
	// Names that hit an exact pattern, a wildcard, a deep wildcard, and none.
	names := []string{"entity3.event3", "entity4.shipped", "entity5.a.b.done", "nobody.here"}
	var o, r, ons []float64
	for range rounds {
		rr, _ := matchRate(small, names, round)
		oo, ns := matchRate(big, names, round)
		r, o, ons = append(r, rr), append(o, oo), append(ons, ns)
	}
	mo, mr := bench.Median(o), bench.Median(r)
	return fmt.Sprintf("case=filter ours=%.0f/s raw=%.0f/s ratio=%.2f ns_per_event_10k=%.0f (10,000 patterns vs 10)",
		mo, mr, mo/mr, bench.Median(ons)), ""
}
