package middleware_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/middleware"
)

func TestReject_alone_rejects_any_failure(t *testing.T) {
	store := middleware.NewMemoryRejected(0)
	h := middleware.Reject{IntegrationID: testID, Store: store}.Middleware(newSink(always(errors.New("connection refused"))).handle)

	_, err := h(event("e1"))

	require.NoError(t, err)
	got, err := store.Get(testID, "e1")
	require.NoError(t, err)
	assert.Equal(t, "connection refused", got.Reason)
	assert.Equal(t, 1, got.Attempts)
	assert.Zero(t, got.StatusCode)
}

func TestReject_context_done_is_returned(t *testing.T) {
	store := middleware.NewMemoryRejected(0)
	h := middleware.Reject{IntegrationID: testID, Store: store}.Middleware(newSink(always(errors.New("connection refused"))).handle)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	msg := event("e1")
	msg.SetContext(ctx)

	_, err := h(msg)

	require.EqualError(t, err, "connection refused")
	_, err = store.Get(testID, "e1")
	require.ErrorIs(t, err, middleware.ErrNotFound)
}

func TestRetry_reason_is_bounded(t *testing.T) {
	e := newEnv(t, middleware.Settings{Retry: middleware.RetryPolicy{MaxAttempts: 1}})
	long := strings.Repeat("é", 3000)

	_, err := e.chain.Middleware(newSink(always(errors.New(long))).handle)(event("e1"))
	require.NoError(t, err)

	got, err := e.rejected.Get(testID, "e1")
	require.NoError(t, err)
	assert.Less(t, len(got.Reason), 2100)
	assert.True(t, strings.HasSuffix(got.Reason, "é…"), "cut on a character boundary")
}

// waitsForProbe reports whether the next thing due is the breaker's probe:
// every event waits for the circuit.
