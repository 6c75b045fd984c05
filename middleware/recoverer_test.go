package middleware_test

import (
	"errors"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/sinks"
)

func TestRecoverer(t *testing.T) {
	_, err := middleware.Recoverer(func(*message.Message) ([]*message.Message, error) {
		panic(sinks.Permanent(errors.New("bad")))
	})(event("e1"))

	var pe *middleware.PanicError
	require.ErrorAs(t, err, &pe)
	assert.Contains(t, string(pe.Stack), "TestRecoverer")
	class, _ := sinks.Classify(err)
	assert.Equal(t, sinks.ClassRetryable, class, "a panic is retryable, whatever the value")
}

func TestRecoverer_passes_results_through(t *testing.T) {
	_, err := middleware.Recoverer(newSink(always(status(503))).handle)(event("e1"))
	assert.Equal(t, status(503), err)
	_, err = middleware.Recoverer(newSink(always(nil)).handle)(event("e1"))
	require.NoError(t, err)
}
