package stopping_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/sinkbus/sinkbus/internal/clock"
	"github.com/sinkbus/sinkbus/internal/stopping"
)

// A wait cut short by the stop signal is a cancellation to whoever checks
// for one (Watermill's router, which then logs no error), and still says
// what happened.
func TestSleep_cut_short_by_the_signal_is_a_cancellation(t *testing.T) {
	stop := make(chan struct{})
	close(stop)
	err := stopping.Sleep(stopping.With(context.Background(), stop), clock.Real{}, time.Hour)
	assert.ErrorIs(t, err, stopping.ErrStopping)
	assert.ErrorIs(t, err, context.Canceled)
	assert.NotErrorIs(t, err, context.DeadlineExceeded)
	assert.EqualError(t, err, "integration stopping: the event will be delivered again")
	assert.NotErrorIs(t, errors.New("other"), stopping.ErrStopping)
}
