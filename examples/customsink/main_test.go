package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The type of its own delivers what fits, rejects at once what never will,
// and refuses a configuration from JSON that misses a field, naming it.
func TestCustomSink_delivers_rejects_and_validates(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(&out))
	assert.Equal(t, `refused: sinkbus: invalid integration: configuration.prefix: required
[orders] o-1 order.created {"total":42}
rejected: o-2 payload of 75 bytes is over 64
`, out.String())
}
