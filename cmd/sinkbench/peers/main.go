// Command peers compares sinkbus with the engines a Go application would
// embed instead to hand its events to a webhook, in one process, against
// the same in-process receiver: sinkbus on the memory journal and on a
// DataDir; Benthos embedded through its public/service API (stock, with
// the same idle connections as the others, and signing each request as
// sinkbus does); a plain Watermill router with stock middleware and a
// net/http handler, and a bare one that signs; raw net/http, unsigned and
// signed.
//
// It is a module of its own so that sinkbus never depends on a peer. Run it
// through sinkbench (go run ./cmd/sinkbench -case peers) or here:
//
//	go run . [-quick] [-sides a,b] [-cpuprofile FILE]
//
// Every side posts the same 1 KiB envelope at concurrency 8 over keep-alive
// connections to its own path of one net/http server. The sides run in
// alternating rounds, each round starting with a different side, after a
// garbage collection, so that each side's CPU and allocations are its own;
// it prints the median rate of each side, its ratio to raw net/http (signed
// sides to the signed raw client, the others to the unsigned one), the same
// ratio in CPU time per event, its CPU time and allocations per event, and
// how the figures stand against sinkbus's targets:
//
//	case=peer-sinkbus-memory ours=15210/s raw=17532/s ratio=0.87 cpu_ratio=0.80 raw_side=raw-signed
//
// For a durable side it adds its journal's fsyncs in the timed rounds,
// the records each made durable, the CPU of an fsync of a group commit on
// the same disk (measured after the rounds), and the two's quotient: the
// least CPU an event costs above the memory journal's.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/cmd/sinkbench/internal/bench"
	"github.com/sinkbus/sinkbus/replay/segments"
)

// A side is one engine delivering to its endpoint of the receiver.
type side struct {
	name   string
	about  string
	signed bool
	// start builds the side, sending to ep; send(n) hands it n events and
	// returns once they are handed (not necessarily delivered: the round
	// ends when the receiver counted them).
	start func(ep *bench.Endpoint) (send func(n int), stop func())

	ep    *bench.Endpoint
	send  func(n int)
	stop  func()
	rates []float64
	cost  bench.Cost
	conns int64 // connections opened in the measured rounds

	// A durable side's journal fsyncs, and those of the measured rounds
	// with the records they made durable.
	journal         *journalSyncs
	fsyncs, records int64
}

// journalSyncs counts a bus's journal fsyncs (bus.Observer.JournalSynced).
type journalSyncs struct {
	bus.NopObserver
	fsyncs, records atomic.Int64
}

func (j *journalSyncs) JournalSynced(s segments.Synced) {
	j.fsyncs.Add(1)
	j.records.Add(int64(s.Records))
}

// Raw sides, the references of the ratios.
const (
	rawUnsigned = "raw"
	rawSigned   = "raw-signed"
)

func sides(dataDir string) []*side {
	durable, interval := &journalSyncs{}, &journalSyncs{}
	return []*side{
		{name: "sinkbus-memory", signed: true,
			about: "bus.Publish → memory journal (default MemoryBytes) → webhook sink (Standard Webhooks signature), concurrency 8",
			start: sinkbusSide(bus.Config{})},
		{name: "sinkbus-datadir", signed: true, journal: durable,
			about: "the same with the durable journal in a DataDir (default Sync: group commit, Publish returns after the fsync)",
			start: sinkbusSide(bus.Config{DataDir: dataDir, Observer: durable})},
		{name: "sinkbus-datadir-interval", signed: true, journal: interval,
			about: "the same with Sync: interval (Publish returns once written, an fsync every 200 ms): what the durable side costs without an fsync per group",
			start: sinkbusSide(bus.Config{DataDir: dataDir + "-interval", Sync: segments.SyncInterval, Observer: interval})},
		{name: "benthos-stock",
			about: "Benthos producer func → http_client output, max_in_flight 8, on its stock transport (net/http's DefaultTransport: 2 idle connections per host)",
			start: benthosSide(false, false)},
		{name: "benthos-idle",
			about: "the same on a transport with the idle connections of the others",
			start: benthosSide(true, false)},
		{name: "benthos-signed", signed: true,
			about: "the same, signing each request (Standard Webhooks) in a Bloblang mutation with hmac_sha256, sending the headers sinkbus sends",
			start: benthosSide(true, true)},
		{name: "watermill",
			about: "GoChannel → Watermill router with stock Retry ▸ Timeout ▸ Recoverer → handler posting with net/http; 8 messages in flight",
			start: watermillSide(true, false)},
		{name: "watermill-bare-signed", signed: true,
			about: "GoChannel → Watermill router, no middleware → handler signing as raw-signed does and posting: the least a design built on a Watermill router adds to raw-signed",
			start: watermillSide(false, true)},
		{name: rawUnsigned,
			about: "8 goroutines posting with one net/http client",
			start: rawSide(false)},
		{name: rawSigned, signed: true,
			about: "the same, signing each request (crypto/hmac per request) and sending the headers sinkbus sends",
			start: rawSide(true)},
	}
}

func main() {
	quick := flag.Bool("quick", false, "3 rounds of 5,000 events per side instead of 11 of 20,000")
	only := flag.String("sides", "", "run only these sides, comma-separated (default: all)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the measured rounds to this file")
	flag.Parse()

	rounds, n := 11, 20_000
	if *quick {
		rounds, n = 3, 5_000
	}
	dir, err := os.MkdirTemp("", "sinkbench-peers-")
	bench.Must(err)
	defer os.RemoveAll(dir)

	all := sides(filepath.Join(dir, "bus"))
	run := all
	if *only != "" {
		run = nil
		for name := range strings.SplitSeq(*only, ",") {
			i := slices.IndexFunc(all, func(s *side) bool { return s.name == name })
			if i < 0 {
				bench.Must(fmt.Errorf("no side %q (sides: %s)", name, names(all)))
			}
			run = append(run, all[i])
		}
	}

	recv := bench.NewReceiver()
	warm := n / 10
	for _, s := range run {
		s.ep = recv.Endpoint(s.name)
		s.send, s.stop = s.start(s.ep)
		warmUp(s, warm)
	}

	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		bench.Must(err)
		bench.Must(pprof.StartCPUProfile(f))
	}
	for r := range rounds {
		for i := range run {
			s := run[(r+i)%len(run)]
			conns := s.ep.Conns()
			fsyncs, records := s.journalFsyncs()
			runtime.GC()
			s.rates = append(s.rates, round(s, n))
			s.conns += s.ep.Conns() - conns
			f, r := s.journalFsyncs()
			s.fsyncs, s.records = s.fsyncs+f-fsyncs, s.records+r-records
		}
	}
	if *cpuprofile != "" {
		pprof.StopCPUProfile()
	}
	// What an fsync of a group commit costs this process on this disk now,
	// for the least a durable event can cost above a memory journal's.
	var fsyncCPU float64
	if slices.ContainsFunc(run, func(s *side) bool { return s.journal != nil }) {
		fsyncCPU = bench.FsyncCPU(dir, rounds*200, func(f *os.File) error { return f.Sync() })
	}
	// One more round per side, not timed, counts the receiver's share of
	// the allocations.
	for _, s := range run {
		runtime.GC()
		s.cost.MeasureReceiver(n, func() { deliver(s, n) })
	}
	for _, s := range run {
		s.stop()
	}
	recv.Close()
	report(run, rounds, n, fsyncCPU)
}

// journalFsyncs is how many fsyncs s's journal made so far, and of how
// many records; zeros for a side without one.
func (s *side) journalFsyncs() (fsyncs, records int64) {
	if s.journal == nil {
		return 0, 0
	}
	return s.journal.fsyncs.Load(), s.journal.records.Load()
}

// round hands n events to s and returns its delivery rate: n over the
// time until the receiver counted the last of them.
func round(s *side, n int) float64 {
	defer s.cost.Measure(n)()
	return bench.PerSecond(n, deliver(s, n))
}

// deliver hands n events to s and returns the time until the receiver
// counted the last of them.
func deliver(s *side, n int) time.Duration {
	done := s.ep.Expect(int64(n))
	start := time.Now()
	s.send(n)
	bench.Wait(done, bench.RoundLimit, func() string {
		return fmt.Sprintf("%s: the receiver counted %d requests in all", s.name, s.ep.Count())
	})
	return time.Since(start)
}

// warmUp sends n events through s before the measured rounds (connections
// open, pools fill), verifying the signature of each request of a signed
// side with the Standard Webhooks reference library.
func warmUp(s *side, n int) {
	var v *verifier
	if s.signed {
		v = newVerifier()
		s.ep.Observe(v.observe)
	}
	done := s.ep.Expect(int64(n))
	s.send(n)
	bench.Wait(done, bench.RoundLimit, func() string { return s.name + ": warm-up not delivered" })
	s.ep.Observe(nil)
	if v != nil {
		bench.Must(v.check(s.name, n))
	}
}

func names(ss []*side) string {
	var b strings.Builder
	for i, s := range ss {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(s.name)
	}
	return b.String()
}

// report prints the figures; fsyncCPU is the CPU time of an fsync of a
// group commit in nanoseconds, measured after the rounds.
func report(run []*side, rounds, n int, fsyncCPU float64) {
	byName := map[string]*side{}
	for _, s := range run {
		byName[s.name] = s
	}
	fmt.Printf("case=peers rounds=%d events=%d body=%dB concurrency=%d load=%s\n",
		rounds, n, len(bench.Envelope()), bench.Concurrency, loadAverage())
	for _, s := range run {
		ref := rawUnsigned
		if s.signed {
			ref = rawSigned
		}
		if s.name == rawSigned {
			ref = rawUnsigned
		}
		line := fmt.Sprintf("case=peer-%s ours=%s", s.name, bench.Rate(bench.Median(s.rates), ""))
		if r := byName[ref]; r != nil && r != s {
			line += fmt.Sprintf(" raw=%s ratio=%.2f cpu_ratio=%.2f raw_side=%s",
				bench.Rate(bench.Median(r.rates), ""), rateRatio(s, r), cpuRatio(s, r), ref)
		}
		fmt.Println(line)
		fmt.Printf("case=peer-%s cost=%s connections=%d rounds=%s\n", s.name, &s.cost, s.conns, spread(s.rates))
		if s.fsyncs > 0 {
			fmt.Printf("case=peer-%s fsyncs=%d records_per_fsync=%.1f fsync_cpu=%.1fµs fsync_floor=%+.1fµs\n",
				s.name, s.fsyncs, s.recordsPerFsync(), fsyncCPU/1e3, s.fsyncFloor(fsyncCPU))
		}
	}
	fmt.Println(targets(byName, fsyncCPU))
}

// recordsPerFsync is how many events an fsync of s's journal made durable
// in the measured rounds: what the fsync's CPU is shared by.
func (s *side) recordsPerFsync() float64 { return float64(s.records) / float64(s.fsyncs) }

// fsyncFloor is the least CPU, in microseconds, an event of s costs above
// a memory journal's: its share of an fsync that costs fsyncCPU ns.
func (s *side) fsyncFloor(fsyncCPU float64) float64 { return fsyncCPU / 1e3 / s.recordsPerFsync() }

// targets checks the figures of this run against what sinkbus aims at.
func targets(by map[string]*side, fsyncCPU float64) string {
	var parts []string
	check := func(name string, v float64, op string, want float64, format string) {
		met := v >= want
		if op == "<=" {
			met = v <= want
		}
		verdict := "missed"
		if met {
			verdict = "met"
		}
		parts = append(parts, fmt.Sprintf(name+"="+format+" (%s %g: %s)", v, op, want, verdict))
	}
	mem, dd := by["sinkbus-memory"], by["sinkbus-datadir"]
	if mem != nil {
		if b := by["benthos-signed"]; b != nil {
			check("memory/benthos-signed", rateRatio(mem, b), ">=", 1.05, "%.2f")
			check("memory/benthos-signed_cpu", cpuRatio(mem, b), ">=", 1.05, "%.2f")
		}
		if r := by[rawSigned]; r != nil {
			check("memory/raw-signed", rateRatio(mem, r), ">=", 0.95, "%.2f")
			check("memory/raw-signed_cpu", cpuRatio(mem, r), ">=", 0.95, "%.2f")
			if w := by["watermill-bare-signed"]; w != nil {
				parts = append(parts, fmt.Sprintf("watermill-bare-signed/raw-signed_cpu=%.2f (a bare Watermill router on GoChannel, signing)", cpuRatio(w, r)))
			}
		}
		check("memory_allocs", mem.cost.OwnAllocsPerEvent(), "<=", 80, "%.1f")
	}
	if dd != nil {
		check("datadir_allocs", dd.cost.OwnAllocsPerEvent(), "<=", 80, "%.1f")
		if mem != nil {
			check("datadir_cpu-memory_cpu", dd.cost.CPUPerEvent()-mem.cost.CPUPerEvent(), "<=", 10, "%+.1fµs")
			if dd.fsyncs > 0 {
				parts = append(parts, fmt.Sprintf("datadir_fsync_floor=%+.1fµs (the fsyncs alone)", dd.fsyncFloor(fsyncCPU)))
			}
		}
	}
	if len(parts) == 0 {
		return "case=peers targets: none of their sides ran"
	}
	return "case=peers targets " + strings.Join(parts, " ")
}

// rateRatio is s's median rate over ref's.
func rateRatio(s, ref *side) float64 { return bench.Median(s.rates) / bench.Median(ref.rates) }

// cpuRatio is ref's CPU time per event over s's: the rate ratio the two
// would have on a machine whose cores they had to themselves, and far
// steadier than the rates on a shared one (another process takes wall
// time from a round, not CPU time from this one).
func cpuRatio(s, ref *side) float64 { return ref.cost.CPUPerEvent() / s.cost.CPUPerEvent() }

// spread is the slowest and fastest round.
func spread(rates []float64) string {
	return fmt.Sprintf("%.0f-%.0f/s", slices.Min(rates), slices.Max(rates))
}

// loadAverage is the machine's one-minute load average at the end of the
// run, or "?" where /proc/loadavg does not exist.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], "/")
}
