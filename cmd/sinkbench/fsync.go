package main

import (
	"fmt"
	"os"
	"syscall"

	"github.com/sinkbus/sinkbus/cmd/sinkbench/internal/bench"
)

func init() {
	register(benchCase{
		name: "fsync",
		about: "the process's CPU time per fsync of one group commit (eight 1 KiB events) written into a preallocated file, as the DataDir " +
			"journal writes and syncs it (os.File.Sync, Go's blocking system call: the runtime hands the processor over while the disk works), " +
			"vs the same system call without that hand-off (syscall.RawSyscall, which a library must not use: a garbage collection would wait " +
			"for the disk). With eight publishers each waiting for its own fsync, ours/8 is the least a durable event can cost above the " +
			"memory journal's, which peers' DataDir target (+10 µs) must clear",
		setup: setupFsync,
		unit:  "ns cpu/fsync",
	})
}

func setupFsync(quick bool) (ours, raw func() float64, cleanup func(), skip string) {
	n := 2000
	if quick {
		n = 500
	}
	dir, err := os.MkdirTemp("", "sinkbench-fsync-")
	bench.Must(err)
	var oursCPU []float64
	ours = func() float64 {
		v := bench.FsyncCPU(dir, n, func(f *os.File) error { return f.Sync() })
		oursCPU = append(oursCPU, v)
		return v
	}
	raw = func() float64 {
		return bench.FsyncCPU(dir, n, func(f *os.File) error {
			if _, _, errno := syscall.RawSyscall(syscall.SYS_FSYNC, f.Fd(), 0, 0); errno != 0 {
				return errno
			}
			return nil
		})
	}
	cleanup = func() {
		if len(oursCPU) > 0 {
			fmt.Printf("case=fsync floor per durable event with groups of eight: %.1fµs cpu\n", bench.Median(oursCPU)/8/1e3)
		}
		bench.Must(os.RemoveAll(dir))
	}
	return ours, raw, cleanup, ""
}
