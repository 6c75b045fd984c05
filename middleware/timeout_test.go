package middleware_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/sinks"
)

type ctxKey struct{}

func TestTimeout_fresh_deadline_per_call(t *testing.T) {
	parent := context.WithValue(context.Background(), ctxKey{}, "request")
	msg := event("e1")
	msg.SetContext(parent)
	var seen []context.Context
	h := middleware.Timeout(time.Hour)(func(msg *message.Message) ([]*message.Message, error) {
		seen = append(seen, msg.Context())
		return nil, nil
	})

	for range 2 {
		_, err := h(msg)
		require.NoError(t, err)
	}

	require.Len(t, seen, 2)
	for _, ctx := range seen {
		_, ok := ctx.Deadline()
		assert.True(t, ok)
		assert.Equal(t, "request", ctx.Value(ctxKey{}), "derived from the message's context")
		assert.ErrorIs(t, ctx.Err(), context.Canceled, "released after the call")
	}
	assert.NotSame(t, seen[0], seen[1])
	assert.Equal(t, parent, msg.Context(), "the message's context is put back")
}

func TestTimeout_expiry_is_retryable(t *testing.T) {
	h := middleware.Timeout(time.Millisecond)(func(msg *message.Message) ([]*message.Message, error) {
		<-msg.Context().Done()
		return nil, msg.Context().Err()
	})

	_, err := h(event("e1"))

	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.EqualError(t, err, "attempt timed out after 1ms: context deadline exceeded")
	class, _ := sinks.Classify(err)
	assert.Equal(t, sinks.ClassRetryable, class)
}

func TestTimeout_keeps_the_sinks_class(t *testing.T) {
	h := middleware.Timeout(time.Millisecond)(func(msg *message.Message) ([]*message.Message, error) {
		<-msg.Context().Done()
		return nil, sinks.Permanent(msg.Context().Err())
	})

	_, err := h(event("e1"))

	class, _ := sinks.Classify(err)
	assert.Equal(t, sinks.ClassPermanent, class, "never re-classified")
}
