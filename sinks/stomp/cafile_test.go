package stomp_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/field"
	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/stomp"
)

// newWithCAFile builds a sink whose tls.ca_file is path, and fails the test
// if that does not end: a ca_file must never make New wait.
func newWithCAFile(t *testing.T, path string) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		p, err := stomp.New(stomp.Config{Addresses: []string{"stomp+ssl://mq.example.com"}, Destination: "/queue/q",
			TLS: stomp.TLS{CAFile: path}}, sinks.Env{})
		if err == nil {
			_ = p.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("stomp.New with ca_file %s did not return", path)
		return nil
	}
}

// A ca_file is read only when it is a regular file of at most MaxCAFile
// bytes, and every other case gets the same answer, so that it cannot tell
// which paths exist on the host: a missing file, a directory, a device
// that never ends, a file too large.
func TestStompSink_ca_file_must_be_a_small_regular_file(t *testing.T) {
	dir := t.TempDir()
	large := filepath.Join(dir, "large.pem")
	require.NoError(t, os.WriteFile(large, make([]byte, stomp.MaxCAFile+1), 0o600))
	var rules []string
	for _, path := range []string{filepath.Join(dir, "missing.pem"), dir, "/dev/zero", large} {
		if _, err := os.Stat(path); path == "/dev/zero" && err != nil {
			continue
		}
		err := newWithCAFile(t, path)
		var fe *field.Error
		require.ErrorAs(t, err, &fe, path)
		assert.Equal(t, "tls.ca_file", fe.Field)
		assert.NotContains(t, err.Error(), path)
		rules = append(rules, fe.Rule)
	}
	require.NotEmpty(t, rules)
	for _, r := range rules {
		assert.Equal(t, rules[0], r, "answers differ, so they tell one path from another")
	}

	notPEM := filepath.Join(dir, "ca.txt")
	require.NoError(t, os.WriteFile(notPEM, []byte("not a certificate"), 0o600))
	err := newWithCAFile(t, notPEM)
	var fe *field.Error
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, "holds no PEM certificate", fe.Rule)
}

// A relative ca_file is under the path root the bus gives the sink.
func TestStompSink_relative_ca_file_is_under_the_path_root(t *testing.T) {
	addr, caFile, rec := tlsServer(t)
	root := filepath.Dir(caFile)
	p := newSink(t, stomp.Config{Addresses: []string{"stomp+ssl://" + addr}, Destination: "/queue/q", Connections: 1,
		TLS: stomp.TLS{CAFile: filepath.Base(caFile)}}, sinks.Env{PathRoot: root})
	msg := event("order.created", "", `{}`)
	require.NoError(t, p.Publish("", msg))
	assert.Equal(t, msg.UUID, rec.next(t).Header.Get(stomp.HeaderID))
}
