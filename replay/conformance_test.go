package replay_test

import (
	"testing"

	"github.com/sinkbus/sinkbus/replay"
	"github.com/sinkbus/sinkbus/replay/storagetest"
)

func TestMemory_conformance(t *testing.T) {
	storagetest.Run(t, storagetest.Factory{
		New: func(*testing.T) replay.Storage { return replay.NewMemory() },
	})
}
