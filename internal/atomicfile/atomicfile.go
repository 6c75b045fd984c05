// Package atomicfile replaces files so that a crash leaves either the old
// content or the new one, never a mix, and makes renames durable. The bus's
// integrations, the middleware's stores, the journal's cursors and the file
// sink all need exactly this; one copy keeps its fsync rules in one place.
package atomicfile

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// TempPrefix starts the name of every temporary file WriteFile makes, so
// that RemoveStale finds what a crash left between write and rename.
const TempPrefix = ".tmp-"

// WriteFile writes data to a temporary file in path's directory, with perm,
// and renames it over path. With sync, the file is fsynced before the rename
// and the directory after it: once WriteFile returns, the new content
// survives a power cut. Without, a crash of the process still leaves one
// whole version.
func WriteFile(path string, data []byte, perm os.FileMode, sync bool) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, TempPrefix+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	err = f.Chmod(perm)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if sync {
		return SyncDir(dir)
	}
	return nil
}

// IsTemp reports whether name (a base name) is one of WriteFile's temporary
// files.
func IsTemp(name string) bool { return strings.HasPrefix(name, TempPrefix) }

// RemoveStale removes the temporary files a crash left in dir.
func RemoveStale(dir string) {
	stale, _ := filepath.Glob(filepath.Join(dir, TempPrefix+"*"))
	for _, p := range stale {
		_ = os.Remove(p)
	}
}

// SyncDir makes the creation, renaming or removal of dir's entries durable.
// Windows cannot sync a directory; NTFS journals its entries itself.
func SyncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
