package postgres_test

import (
	"testing"

	"github.com/sinkbus/sinkbus/replay/storagetest"
)

func TestStorage_conformance(t *testing.T) {
	storagetest.Run(t, factory())
}
