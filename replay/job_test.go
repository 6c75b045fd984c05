package replay_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/sinkbus/sinkbus/replay"
)

func TestJob_reports_how_it_ended(t *testing.T) {
	var dry replay.Job // a dry run's job: nothing to wait for
	assert.NoError(t, dry.Err())
	assert.NoError(t, dry.Wait(context.Background()))

	job, end := replay.NewJob("replay-1", 3)
	assert.Equal(t, "replay-1", job.ID)
	assert.Equal(t, 3, job.Matched)
	assert.NoError(t, job.Err(), "under way")
	short, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, job.Wait(short), context.DeadlineExceeded, "still under way")

	end(errors.Join(replay.ErrAborted, errors.New("integration stopped")))
	end(nil) // a second end changes nothing
	<-job.Done
	assert.ErrorIs(t, job.Err(), replay.ErrAborted)
	assert.ErrorIs(t, job.Wait(context.Background()), replay.ErrAborted)

	done, end := replay.NewJob("replay-2", 0)
	end(nil)
	assert.NoError(t, done.Wait(context.Background()))
	assert.NoError(t, done.Err())
}
