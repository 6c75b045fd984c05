package bench_test

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/sinkbus/sinkbus/cmd/sinkbench/internal/bench"
)

func TestFsyncCPU_measures_the_cpu_of_each_sync(t *testing.T) {
	syncs := 0
	cpu := bench.FsyncCPU(t.TempDir(), 20, func(f *os.File) error {
		syncs++
		return f.Sync()
	})
	assert.Equal(t, 20, syncs)
	assert.Positive(t, cpu)
}
