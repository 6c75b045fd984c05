package atomicfile_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/internal/atomicfile"
)

func TestWriteFile_replaces_the_content_and_leaves_no_temporary_file(t *testing.T) {
	for _, sync := range []bool{true, false} {
		dir := t.TempDir()
		path := filepath.Join(dir, "doc.json")
		require.NoError(t, atomicfile.WriteFile(path, []byte("old"), 0o600, sync))
		require.NoError(t, atomicfile.WriteFile(path, []byte("new"), 0o600, sync))

		got, err := os.ReadFile(path)
		require.NoError(t, err)
		assert.Equal(t, "new", string(got))
		info, err := os.Stat(path)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		assert.Len(t, entries, 1, "only the document")
	}
}

func TestWriteFile_fails_without_touching_the_old_content(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "doc.json")
	require.NoError(t, atomicfile.WriteFile(path, []byte("old"), 0o600, true))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "sub"), 0o700))
	// A directory in the way of the rename.
	assert.Error(t, atomicfile.WriteFile(filepath.Join(dir, "sub"), []byte("x"), 0o600, true))
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "old", string(got))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 2, "the document and the directory: the temporary file is gone")
}

func TestRemoveStale_removes_only_temporary_files(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{atomicfile.TempPrefix + "doc.json-123", "doc.json"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), nil, 0o600))
	}
	atomicfile.RemoveStale(dir)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1)
	assert.Equal(t, "doc.json", entries[0].Name())
	assert.True(t, atomicfile.IsTemp(atomicfile.TempPrefix+"x"))
	assert.False(t, atomicfile.IsTemp("doc.json"))
}
