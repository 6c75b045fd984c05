package sinks_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/sinks"
)

func TestConfine(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "in", "deep"), 0o700))
	require.NoError(t, os.Symlink(outside, filepath.Join(root, "out")))
	require.NoError(t, os.Symlink("/nonexistent/dir", filepath.Join(root, "dangling-out")))
	require.NoError(t, os.Symlink("../etc", filepath.Join(root, "up")))
	require.NoError(t, os.Symlink("in/deep", filepath.Join(root, "within")))
	require.NoError(t, os.WriteFile(filepath.Join(root, "file"), nil, 0o600))
	for _, tt := range []struct {
		path string
		ok   bool
	}{
		{"in", true},
		{"in/deep/new/dirs", true},
		{"not/yet", true},
		{"within/new", true}, // a link that stays inside
		{"file/sub", true},   // inside; the sink reports it cannot create it
		{".", false},         // the root itself
		{"..", false},
		{"in/../../x", false},
		{"out", false},
		{"out/sub", false},
		{"dangling-out/sub", false},
		{"up/passwd", false},
		{"/etc", false},
		{outside, false},
	} {
		p := tt.path
		if !filepath.IsAbs(p) {
			p = filepath.Join(root, p)
		}
		err := sinks.Confine(root, p)
		if tt.ok {
			assert.NoError(t, err, tt.path)
		} else {
			assert.ErrorIs(t, err, sinks.ErrOutsideRoot, tt.path)
		}
	}
	assert.ErrorIs(t, sinks.Confine("", filepath.Join(root, "in")), sinks.ErrOutsideRoot, "no root, no path")
	assert.NoError(t, sinks.Confine(filepath.Join(root, "missing"), filepath.Join(root, "missing", "x")),
		"nothing below a root that does not exist can lead out")
}

func TestEnv_Path_takes_relative_paths_under_the_root(t *testing.T) {
	env := sinks.Env{PathRoot: "/var/sinkbus/exports"}
	assert.Equal(t, "/var/sinkbus/exports/erp", env.Path("erp/"))
	assert.Equal(t, "/srv/erp", env.Path("/srv//erp"))
	assert.Equal(t, "", env.Path(""))
	assert.Equal(t, "erp", sinks.Env{}.Path("./erp"), "no root: the working directory")
}
