// Command sinkbench measures sinkbus against a raw baseline in the same
// process. Each case runs its two sides in alternating rounds, so the noise
// of a shared machine hits both alike, and prints the median of each side and
// their ratio:
//
//	case=pipeline ours=81234/s raw=90123/s ratio=0.90
//
// Usage: go run ./cmd/sinkbench [-case NAME] [-quick]
//
// To profile one side alone: -side ours -cpuprofile FILE.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"time"
)

// benchCase is one comparison. run returns events per second for one round
// of one side; extra lines may be printed by the case itself.
type benchCase struct {
	name  string
	about string
	// setup prepares the case and returns both sides and a cleanup; skip is
	// a reason not to run (a server address is missing).
	setup func(quick bool) (ours, raw func() float64, cleanup func(), skip string)
	// report, when set, prints the case's line itself.
	report func(quick bool) (line string, skip string)
	unit   string // "/s" by default
}

var cases []benchCase

func register(c benchCase) { cases = append(cases, c) }

func main() {
	only := flag.String("case", "", "run only this case ("+caseNames()+")")
	quick := flag.Bool("quick", false, "fewer and shorter rounds: each case under 30 s")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	memprofile := flag.String("memprofile", "", "write an allocation profile of the whole run to this file")
	side := flag.String("side", "", "run only this side, ours or raw, to profile it alone (no ratio)")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		must(err)
		must(pprof.StartCPUProfile(f))
		defer pprof.StopCPUProfile()
	}

	if *memprofile != "" {
		runtime.MemProfileRate = 4096
		defer func() {
			f, err := os.Create(*memprofile)
			must(err)
			must(pprof.Lookup("allocs").WriteTo(f, 0))
			must(f.Close())
		}()
	}

	ran := 0
	for _, c := range cases {
		if *only != "" && c.name != *only {
			continue
		}
		ran++
		if c.report != nil {
			line, skip := c.report(*quick)
			if skip != "" {
				fmt.Printf("case=%s skipped: %s\n", c.name, skip)
				continue
			}
			fmt.Println(line)
			continue
		}
		ours, raw, cleanup, skip := c.setup(*quick)
		if skip != "" {
			fmt.Printf("case=%s skipped: %s\n", c.name, skip)
			continue
		}
		rounds := 7
		if *quick {
			rounds = 3
		}
		var o, r []float64
		for range rounds {
			if *side != "ours" {
				r = append(r, raw())
			}
			if *side != "raw" {
				o = append(o, ours())
			}
		}
		cleanup()
		switch *side {
		case "ours":
			fmt.Printf("case=%s ours=%s\n", c.name, rate(median(o), c.unit))
		case "raw":
			fmt.Printf("case=%s raw=%s\n", c.name, rate(median(r), c.unit))
		default:
			mo, mr := median(o), median(r)
			fmt.Printf("case=%s ours=%s raw=%s ratio=%.2f\n", c.name, rate(mo, c.unit), rate(mr, c.unit), mo/mr)
		}
	}
	if ran == 0 {
		fmt.Fprintf(os.Stderr, "sinkbench: no case %q (cases: %s)\n", *only, caseNames())
		pprof.StopCPUProfile()
		os.Exit(2)
	}
}

func caseNames() string {
	names := make([]string, len(cases))
	for i, c := range cases {
		names[i] = c.name
	}
	return strings.Join(names, ", ")
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func rate(v float64, unit string) string {
	if unit == "" {
		unit = "/s"
	}
	return fmt.Sprintf("%.0f%s", v, unit)
}

// perSecond turns n events in d into events per second.
func perSecond(n int, d time.Duration) float64 { return float64(n) / d.Seconds() }

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "sinkbench:", err)
		os.Exit(1)
	}
}
