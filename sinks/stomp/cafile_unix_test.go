//go:build unix

package stomp_test

import (
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/field"
)

// A named pipe as ca_file fails at once, with the answer any unreadable
// path gets, instead of waiting forever for a writer.
func TestStompSink_ca_file_named_pipe_does_not_hang(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	err := newWithCAFile(t, fifo)
	var fe *field.Error
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, "tls.ca_file", fe.Field)
	assert.Contains(t, fe.Rule, "regular file")
}
