package middleware_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/middleware"
)

func TestReject_OnReject_is_told_each_stored_event(t *testing.T) {
	var got []middleware.RejectedEvent
	var ids []string
	h := middleware.Reject{
		IntegrationID: testID,
		Store:         middleware.NewMemoryRejected(0),
		OnReject: func(id string, e middleware.RejectedEvent) {
			ids = append(ids, id)
			got = append(got, e)
		},
	}.Middleware(newSink(always(errors.New("connection refused"))).handle)

	_, err := h(event("e1"))
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, []string{testID}, ids)
	assert.Equal(t, "e1", got[0].EventID)
	assert.Equal(t, "connection refused", got[0].Reason)

	_, err = middleware.Reject{IntegrationID: testID, Store: middleware.NewMemoryRejected(0)}.
		Middleware(newSink(always(nil)).handle)(event("e2"))
	require.NoError(t, err, "a nil OnReject is fine")
}
