package bus_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/bustest"
	"github.com/sinkbus/sinkbus/replay"
	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/file"
	"github.com/sinkbus/sinkbus/sinks/s3"
	"github.com/sinkbus/sinkbus/sinks/stomp"
)

// pathsBus is a bus with a DataDir, so its path root is DataDir/exports,
// and a symbolic link in that root leading out of it.
func pathsBus(t *testing.T) (tb *bustest.Bus, dataDir, outside string) {
	t.Helper()
	dataDir, outside = t.TempDir(), t.TempDir()
	root := filepath.Join(dataDir, "exports")
	require.NoError(t, os.MkdirAll(root, 0o700))
	require.NoError(t, os.Symlink(outside, filepath.Join(root, "link")))
	tb = bustest.New(t, func(c *bus.Config) { c.DataDir = dataDir; c.Storage = replay.NewMemory() })
	return tb, dataDir, outside
}

// Paths stay within the path root: absolute paths elsewhere, ".." and
// symbolic links out of it, and the root itself are refused naming the
// field, for the file sink's dir, the s3 spool_dir and the STOMP
// tls.ca_file; nothing is created outside.
func TestIntegrations_paths_stay_within_the_path_root(t *testing.T) {
	tb, dataDir, outside := pathsBus(t)
	stompCA := func(ca string) sinks.Config {
		return stomp.Config{Addresses: []string{"stomp+ssl://mq.example.com"}, Destination: "/queue/q", TLS: stomp.TLS{CAFile: ca}}
	}
	for _, tc := range []struct {
		sink  sinks.Config
		field string
	}{
		{file.Config{Dir: "/proc/self/evil"}, "configuration.dir"},
		{file.Config{Dir: filepath.Join(outside, "exports")}, "configuration.dir"},
		{file.Config{Dir: "../../escape"}, "configuration.dir"},
		{file.Config{Dir: "erp/../../escape"}, "configuration.dir"},
		{file.Config{Dir: "link/erp"}, "configuration.dir"},
		{file.Config{Dir: "."}, "configuration.dir"},
		{file.Config{Dir: filepath.Join(dataDir, "journal")}, "configuration.dir"},
		{s3.Config{Bucket: "exports", SpoolDir: "/tmp/spool"}, "configuration.spool_dir"},
		{s3.Config{Bucket: "exports", SpoolDir: "link"}, "configuration.spool_dir"},
		{stompCA("/etc/passwd"), "configuration.tls.ca_file"},
		{stompCA("link/ca.pem"), "configuration.tls.ca_file"},
	} {
		_, err := tb.Integrations().Create(ctx, bus.Integration{Sink: tc.sink})
		require.ErrorIs(t, err, bus.ErrInvalid, "%+v", tc.sink)
		assert.Equal(t, []string{tc.field}, fieldsOf(err), "%+v", tc.sink)
		assert.Contains(t, err.Error(), "inside the directory the application allows")
	}
	entries, err := os.ReadDir(outside)
	require.NoError(t, err)
	assert.Empty(t, entries, "nothing was created outside the root")
	_, err = os.Stat(filepath.Join(filepath.Dir(dataDir), "escape"))
	assert.ErrorIs(t, err, os.ErrNotExist)
	list, err := tb.Integrations().List(ctx)
	require.NoError(t, err)
	assert.Empty(t, list)
}

// A relative path is under the path root, and so is an absolute one that
// names a directory there.
func TestIntegrations_paths_inside_the_root_are_used_there(t *testing.T) {
	tb, dataDir, _ := pathsBus(t)
	root := filepath.Join(dataDir, "exports")
	tb.Create(bus.Integration{ID: "rel", Sink: file.Config{Dir: "erp/orders"}})
	tb.Create(bus.Integration{ID: "abs", Sink: file.Config{Dir: filepath.Join(root, "abs")}})
	for _, dir := range []string{filepath.Join(root, "erp", "orders"), filepath.Join(root, "abs")} {
		_, err := os.Stat(filepath.Join(dir, file.LockName))
		assert.NoError(t, err, "the sink works in %s", dir)
	}
}

// The application's own code may name any path, explicitly
// (UnconfinedPaths); an update that leaves such a path as it was keeps it
// (a rename through JSON, which cannot say UnconfinedPaths), and one that
// changes it is confined.
func TestIntegrations_UnconfinedPaths_lets_the_application_name_any_path(t *testing.T) {
	tb, _, outside := pathsBus(t)
	tb.Create(bus.Integration{ID: "erp", Sink: file.Config{Dir: filepath.Join(outside, "erp")}, UnconfinedPaths: true})
	_, err := os.Stat(filepath.Join(outside, "erp", file.LockName))
	require.NoError(t, err)

	in, err := tb.Integrations().Update(ctx, "erp", bus.Integration{Name: "ERP export",
		Sink: file.Config{Dir: filepath.Join(outside, "erp")}})
	require.NoError(t, err)
	assert.Equal(t, "ERP export", in.Name)

	_, err = tb.Integrations().Update(ctx, "erp", bus.Integration{Sink: file.Config{Dir: filepath.Join(outside, "other")}})
	require.ErrorIs(t, err, bus.ErrInvalid)
	assert.Equal(t, []string{"configuration.dir"}, fieldsOf(err))
}

// Without a DataDir or a PathRoot no path is allowed; with a PathRoot,
// paths are confined to it and relative ones start there.
func TestIntegrations_paths_need_a_root(t *testing.T) {
	tb := bustest.New(t)
	_, err := tb.Integrations().Create(ctx, bus.Integration{Sink: file.Config{Dir: "/tmp/x"}})
	require.ErrorIs(t, err, bus.ErrInvalid)
	assert.Equal(t, []string{"configuration.dir"}, fieldsOf(err))
	assert.Contains(t, err.Error(), "allows no path")

	root := t.TempDir()
	tb = bustest.New(t, func(c *bus.Config) { c.PathRoot = root })
	tb.Create(bus.Integration{ID: "erp", Sink: file.Config{Dir: "erp"}})
	_, err = os.Stat(filepath.Join(root, "erp", file.LockName))
	assert.NoError(t, err)
}

// A directory the sink cannot create is the configuration's mistake,
// ErrInvalid naming the field (400 through the management API), not an
// internal error, confined or not.
func TestIntegrations_directory_that_cannot_be_created_names_the_field(t *testing.T) {
	tb, dataDir, _ := pathsBus(t)
	require.NoError(t, os.WriteFile(filepath.Join(dataDir, "exports", "taken"), nil, 0o600))
	for _, in := range []bus.Integration{
		{Sink: file.Config{Dir: "taken/erp"}},
		{Sink: file.Config{Dir: "/proc/self/evil"}, UnconfinedPaths: true},
	} {
		_, err := tb.Integrations().Create(ctx, in)
		require.ErrorIs(t, err, bus.ErrInvalid)
		assert.Equal(t, []string{"configuration.dir"}, fieldsOf(err))
		assert.Contains(t, err.Error(), "cannot be created or written")
	}
	_, err := tb.Integrations().Create(ctx, bus.Integration{Sink: s3.Config{Bucket: "exports", SpoolDir: "taken/spool"}})
	require.ErrorIs(t, err, bus.ErrInvalid)
	assert.Equal(t, []string{"configuration.spool_dir"}, fieldsOf(err))
}
