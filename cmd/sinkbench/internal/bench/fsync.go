package bench

import (
	"os"
)

const (
	fsyncGroup    = 8 << 10 // what one group commit of eight 1 KiB events writes
	fsyncFileSize = 8 << 20
)

// FsyncCPU writes n groups into a file of dir filled with zeros beforehand,
// as the journal's segment is, syncing each with sync, and returns the
// process's CPU time per sync in nanoseconds: what an fsync of a group
// commit costs this process, disk and kernel included.
func FsyncCPU(dir string, n int, sync func(*os.File) error) float64 {
	f, err := os.CreateTemp(dir, "segment-")
	Must(err)
	defer func() {
		Must(f.Close())
		Must(os.Remove(f.Name()))
	}()
	zeros := make([]byte, 1<<20)
	for at := int64(0); at < fsyncFileSize; at += int64(len(zeros)) {
		_, err := f.WriteAt(zeros, at)
		Must(err)
	}
	Must(f.Sync())
	group := make([]byte, fsyncGroup)
	for i := range group {
		group[i] = byte('a' + i%26)
	}
	var cost Cost
	end := cost.Measure(n)
	for i := range n {
		_, err := f.WriteAt(group, int64(i*fsyncGroup)%fsyncFileSize)
		Must(err)
		Must(sync(f))
	}
	end()
	return float64(cost.CPU.Nanoseconds()) / float64(n)
}
