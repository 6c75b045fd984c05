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

const (
	fsyncGroup    = 8 << 10 // eight 1 KiB events
	fsyncFileSize = 8 << 20
)

func setupFsync(quick bool) (ours, raw func() float64, cleanup func(), skip string) {
	n := 2000
	if quick {
		n = 500
	}
	dir, err := os.MkdirTemp("", "sinkbench-fsync-")
	bench.Must(err)
	var oursCPU []float64
	ours = func() float64 {
		v := fsyncRound(dir, n, func(f *os.File) error { return f.Sync() })
		oursCPU = append(oursCPU, v)
		return v
	}
	raw = func() float64 {
		return fsyncRound(dir, n, func(f *os.File) error {
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

// fsyncRound writes n groups into a file filled with zeros beforehand, as
// the journal's segment is, syncing each with sync, and returns the
// process's CPU time per sync in nanoseconds.
func fsyncRound(dir string, n int, sync func(*os.File) error) float64 {
	f, err := os.CreateTemp(dir, "segment-")
	bench.Must(err)
	defer func() {
		bench.Must(f.Close())
		bench.Must(os.Remove(f.Name()))
	}()
	zeros := make([]byte, 1<<20)
	for at := int64(0); at < fsyncFileSize; at += int64(len(zeros)) {
		_, err := f.WriteAt(zeros, at)
		bench.Must(err)
	}
	bench.Must(f.Sync())
	group := make([]byte, fsyncGroup)
	for i := range group {
		group[i] = byte('a' + i%26)
	}
	var cost bench.Cost
	end := cost.Measure(n)
	for i := range n {
		_, err := f.WriteAt(group, int64(i*fsyncGroup)%fsyncFileSize)
		bench.Must(err)
		bench.Must(sync(f))
	}
	end()
	return float64(cost.CPU.Nanoseconds()) / float64(n)
}
