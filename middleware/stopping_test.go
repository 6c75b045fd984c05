package middleware_test

import (
	"context"
	"errors"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/internal/stopping"
	"github.com/sinkbus/sinkbus/middleware"
)

// stoppable returns msg whose context carries a stop signal, and the
// function raising it.
func stoppable(msg *message.Message) (*message.Message, func()) {
	stop := make(chan struct{})
	msg.SetContext(stopping.With(context.Background(), stop))
	return msg, func() { close(stop) }
}

func TestChain_stop_signal_ends_the_backoff_wait_without_rejecting(t *testing.T) {
	e := newEnv(t, middleware.Settings{})
	s := newSink(always(errors.New("connection reset")))
	msg, stop := stoppable(event("e1"))
	w := start(e.chain.Middleware(s.handle), msg)
	parked(t, e.clock, w) // in the backoff wait after the first attempt

	stop()
	res := w.wait(t)
	require.ErrorIs(t, res.err, stopping.ErrStopping, "nacked: the event stays in the journal")
	assert.Equal(t, 1, s.Calls(), "no attempt after the signal")
	list, err := e.rejected.List(testID)
	require.NoError(t, err)
	assert.Empty(t, list)
	assert.Equal(t, []string{middleware.ActionRetryTriggered}, e.actions(t))
}

func TestChain_answer_within_the_stop_grace_counts(t *testing.T) {
	e := newEnv(t, middleware.Settings{})
	msg, stop := stoppable(event("e1"))
	s := newSink(func(int, *message.Message) error {
		stop() // the integration stops while the attempt is under way
		return status(400)
	})
	_, err := e.chain.Middleware(s.handle)(msg)
	require.NoError(t, err, "settled: acknowledged as rejected")
	got, gerr := e.rejected.Get(testID, "e1")
	require.NoError(t, gerr, "a permanent answer is final, stop or not")
	assert.Equal(t, "e1", got.EventID)
}
