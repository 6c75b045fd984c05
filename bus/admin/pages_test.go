package admin

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/middleware"
)

// The replays are read out of the log, newest first: running until an
// entry ends them, completed or aborted; one whose start left the log is
// still shown by its end. Entries of other actions are left alone.
func TestReplays_read_out_of_the_log(t *testing.T) {
	at := func(m int) time.Time { return time.Date(2026, 5, 1, 12, m, 0, 0, time.UTC) }
	log := []middleware.LogEntry{ // newest first, as the bus gives it
		{Action: bus.ActionReplayStarted, Reason: "replay-4: 3 matching events published from a to b.", CreatedAt: at(6)},
		{Action: bus.ActionReplayAborted, Reason: "replay-3: the integration stopped before every event of the range was settled.", CreatedAt: at(5)},
		{Action: middleware.ActionIntegrationStopped, Reason: "replay-9: not a replay entry", CreatedAt: at(4)},
		{Action: bus.ActionReplayCompleted, Reason: "replay-2: every event of the range was settled.", CreatedAt: at(3)},
		{Action: bus.ActionReplayStarted, Reason: "replay-3: 5 matching events published from a to b.", CreatedAt: at(2)},
		{Action: bus.ActionReplayCompleted, Reason: "replay-1: every event of the range was settled.", CreatedAt: at(1)},
	}
	assert.Equal(t, []replayRow{
		{ID: "replay-4", Started: at(6), State: "running", Text: "3 matching events published from a to b."},
		{ID: "replay-3", Started: at(2), Ended: at(5), State: "aborted", Text: "5 matching events published from a to b.",
			Outcome: "the integration stopped before every event of the range was settled."},
		{ID: "replay-2", Ended: at(3), State: "completed", Outcome: "every event of the range was settled."},
		{ID: "replay-1", Ended: at(1), State: "completed", Outcome: "every event of the range was settled."},
	}, replays(log))
}
