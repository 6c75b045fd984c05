package main

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/cmd/sinkbench/internal/bench"
)

// The rounds of drain and fanout check what they measure themselves (a
// failed check ends the process, which fails the test): these runs keep
// them working as the bus changes.

func TestDrainRound_delivers_the_whole_durable_backlog(t *testing.T) {
	recv := bench.NewReceiver()
	t.Cleanup(recv.Close)
	ep := recv.Endpoint("drain")
	var cost bench.Cost
	rate := drainRound(bus.Config{DataDir: t.TempDir()}, ep, 300, &cost)
	assert.Positive(t, rate)
	assert.EqualValues(t, 300, ep.Count(), "each event of the backlog posted once")
	assert.Equal(t, 300, cost.Events)
}

func TestFanoutRound_gives_each_integration_its_own_events(t *testing.T) {
	for _, integrations := range []int{1, len(fanoutNames)} {
		var cost bench.Cost
		assert.Positive(t, fanoutRound(integrations, 1000, byName, &cost))
		assert.Equal(t, 1000, cost.Events)
	}
	var cost bench.Cost
	assert.Positive(t, fanoutRound(len(fanoutNames), 1000, byTenant, &cost), "each tenant's integration gets its tenant's")
	for _, integrations := range []int{1, len(fanoutNames)} {
		var cost bench.Cost
		assert.Positive(t, fanoutRound(integrations, 1000, backlog, &cost), "a backlog caught up from Start")
		assert.Equal(t, 1000, cost.Events)
	}
}

func TestShare_adds_up(t *testing.T) {
	for _, n := range []int{0, 1, 24, 25, 26, 1000, 1001} {
		sum := 0
		for i := range fanoutNames {
			sum += share(n, len(fanoutNames), i)
		}
		assert.Equal(t, n, sum, "n=%d", n)
		assert.Equal(t, n, share(n, 1, 0))
	}
}

func TestRejectedRound_stores_every_rejection(t *testing.T) {
	round, stop := rejectingBus(t.TempDir())
	defer stop()
	assert.Positive(t, round(40)) // returns only once 40 rejections are stored
	assert.Positive(t, round(40), "the second round counts its own")
}
