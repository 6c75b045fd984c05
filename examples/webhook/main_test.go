package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The smallest program delivers its event, signed, to the receiver.
func TestWebhook_delivers_a_verified_event(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(&out))
	assert.Contains(t, out.String(), `received evt-1 {"id":"evt-1","name":"order.fulfilled","tenant":"acme"`)
	assert.Contains(t, out.String(), `"payload":{"order":"o-1"}`)
}
