package bench

import (
	"fmt"
	"runtime"
	"syscall"
	"time"
)

// Cost adds up the process's CPU time and allocations over one side's
// rounds. CPU per event is steadier than the rate on a shared machine: other
// processes take wall time from a round, not CPU time from this process.
type Cost struct {
	CPU    time.Duration
	Allocs uint64
	Events int
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

func (c *Cost) String() string {
	if c.Events == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1fµs cpu, %.0f allocs per event", c.CPUPerEvent(), c.AllocsPerEvent())
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
