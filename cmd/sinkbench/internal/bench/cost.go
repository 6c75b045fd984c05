package bench

import (
	"fmt"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// Cost adds up the process's CPU time and allocations over one side's
// rounds. CPU per event is steadier than the rate on a shared machine: other
// processes take wall time from a round, not CPU time from this process.
//
// The allocations are the whole process's, the in-process Receiver's
// included. A side's extra round under MeasureReceiver counts the
// receiver's share exactly; String then prints it and the rest, the side's
// own ("ours").
type Cost struct {
	CPU    time.Duration
	Allocs uint64
	Events int

	// ReceiverAllocs over ReceiverEvents: the receiver's allocations in the
	// rounds run under MeasureReceiver (not counted above).
	ReceiverAllocs uint64
	ReceiverEvents int
}

// Measure starts measuring a round of n events; call the result at its end.
func (c *Cost) Measure(n int) (end func()) {
	cpu0, m0 := CPUTime(), Mallocs()
	return func() {
		c.CPU += CPUTime() - cpu0
		c.Allocs += Mallocs() - m0
		c.Events += n
	}
}

// CPUPerEvent is the CPU time per event, in microseconds.
func (c *Cost) CPUPerEvent() float64 {
	if c.Events == 0 {
		return 0
	}
	return float64(c.CPU.Nanoseconds()) / 1e3 / float64(c.Events)
}

// AllocsPerEvent is the number of allocations per event.
func (c *Cost) AllocsPerEvent() float64 {
	if c.Events == 0 {
		return 0
	}
	return float64(c.Allocs) / float64(c.Events)
}

// ReceiverAllocsPerEvent is the Receiver's allocations per event, as
// counted by MeasureReceiver; 0 if no round was.
func (c *Cost) ReceiverAllocsPerEvent() float64 {
	if c.ReceiverEvents == 0 {
		return 0
	}
	return float64(c.ReceiverAllocs) / float64(c.ReceiverEvents)
}

// OwnAllocsPerEvent is AllocsPerEvent without the Receiver's share: the
// side's own allocations per event (the whole process's if no round was
// counted under MeasureReceiver).
func (c *Cost) OwnAllocsPerEvent() float64 {
	return c.AllocsPerEvent() - c.ReceiverAllocsPerEvent()
}

func (c *Cost) String() string {
	if c.Events == 0 {
		return "-"
	}
	s := fmt.Sprintf("%.1fµs cpu, %.0f allocs per event", c.CPUPerEvent(), c.AllocsPerEvent())
	if c.ReceiverEvents > 0 {
		s += fmt.Sprintf(" (receiver %.1f, ours %.1f)", c.ReceiverAllocsPerEvent(), c.OwnAllocsPerEvent())
	}
	return s
}

// MeasureReceiver runs a round of n events (round) with every allocation
// of the process recorded with its stack (runtime.MemProfileRate = 1), and
// adds those made by the Receiver (by net/http's server for its requests,
// or in Receiver.ServeHTTP) to c.ReceiverAllocs. The round counts in
// nothing else: recording each allocation slows it down.
func (c *Cost) MeasureReceiver(n int, round func()) {
	rate := runtime.MemProfileRate
	runtime.MemProfileRate = 1
	defer func() { runtime.MemProfileRate = rate }()
	// runtime.GC publishes the allocations made before it to MemProfile.
	runtime.GC()
	before := receiverAllocs()
	round()
	runtime.GC()
	c.ReceiverAllocs += receiverAllocs() - before
	c.ReceiverEvents += n
}

// receiverAllocs is how many allocations MemProfile holds whose stack runs
// in the Receiver. The records are cumulative: a difference of two calls is
// what was allocated in between (exactly, at MemProfileRate 1).
func receiverAllocs() uint64 {
	var recs []runtime.MemProfileRecord
	n, _ := runtime.MemProfile(nil, true)
	for {
		recs = make([]runtime.MemProfileRecord, n+64)
		var ok bool
		if n, ok = runtime.MemProfile(recs, true); ok {
			recs = recs[:n]
			break
		}
	}
	var sum uint64
	for i := range recs {
		if inReceiver(recs[i].Stack()) {
			sum += uint64(recs[i].AllocObjects)
		}
	}
	return sum
}

// inReceiver tells whether stack runs in the Receiver: in the goroutines
// net/http's server starts for a connection, (*conn).serve and its
// background reader, or in its accept loop, or in Receiver.ServeHTTP.
func inReceiver(stack []uintptr) bool {
	frames := runtime.CallersFrames(stack)
	for {
		f, more := frames.Next()
		switch name := f.Function; {
		case strings.HasPrefix(name, "net/http.(*conn)."),
			strings.HasPrefix(name, "net/http.(*connReader)."),
			name == "net/http.(*Server).Serve",
			strings.HasSuffix(name, "/internal/bench.(*Receiver).ServeHTTP"):
			return true
		}
		if !more {
			return false
		}
	}
}

// Mallocs is the number of heap allocations so far.
func Mallocs() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Mallocs
}

// CPUTime is the process's user and system CPU time so far.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
