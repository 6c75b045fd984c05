// Command sinkbench measures sinkbus against a raw baseline in the same
// process. Each case runs its two sides in alternating rounds, so the noise
// of a shared machine hits both alike, and prints the median of each side and
// their ratio:
//
//	case=pipeline ours=81234/s raw=90123/s ratio=0.90
//
// Usage: go run ./cmd/sinkbench [-case NAME] [-quick]
//
// To profile one side alone: -side ours -cpuprofile FILE. The peers case
// runs the peers module (cmd/sinkbench/peers) with go run: there -side
// names its sides and -cpuprofile profiles its measured rounds.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"

	"github.com/sinkbus/sinkbus/cmd/sinkbench/internal/bench"
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
	side := flag.String("side", "", "run only this side, ours or raw, to profile it alone (no ratio); with -case peers, its sides, comma-separated")
	flag.Parse()
	// The peers case runs in a process of its own: it takes these flags.
	if *only == "peers" {
		if *side != "" {
			peersArgs = append(peersArgs, "-sides", *side)
		}
		if *cpuprofile != "" {
			path, err := filepath.Abs(*cpuprofile)
			bench.Must(err)
			peersArgs = append(peersArgs, "-cpuprofile", path)
			*cpuprofile = ""
		}
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		bench.Must(err)
		bench.Must(pprof.StartCPUProfile(f))
		defer pprof.StopCPUProfile()
	}

	if *memprofile != "" {
		runtime.MemProfileRate = 4096
		defer func() {
			f, err := os.Create(*memprofile)
			bench.Must(err)
			bench.Must(pprof.Lookup("allocs").WriteTo(f, 0))
			bench.Must(f.Close())
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
			fmt.Printf("case=%s ours=%s\n", c.name, bench.Rate(bench.Median(o), c.unit))
		case "raw":
			fmt.Printf("case=%s raw=%s\n", c.name, bench.Rate(bench.Median(r), c.unit))
		default:
			mo, mr := bench.Median(o), bench.Median(r)
			fmt.Printf("case=%s ours=%s raw=%s ratio=%.2f\n", c.name, bench.Rate(mo, c.unit), bench.Rate(mr, c.unit), mo/mr)
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
