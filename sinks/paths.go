package sinks

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Path returns a configured path as the sink opens it: a relative one under
// env.PathRoot when there is one, cleaned.
func (env Env) Path(p string) string {
	if p == "" {
		return ""
	}
	if !filepath.IsAbs(p) && env.PathRoot != "" {
		p = filepath.Join(env.PathRoot, p)
	}
	return filepath.Clean(p)
}

// ErrOutsideRoot is what Confine returns for a path that leaves its root.
var ErrOutsideRoot = errors.New("must be a path inside the directory the application allows (a relative path starts there); \"..\" and symbolic links out of it are refused")

// Confine checks that path (absolute, or relative to the working directory)
// lies strictly below root, also once every symbolic link on the way that
// exists is followed. What does not exist yet cannot lead out: a sink
// creates it below what does. It returns ErrOutsideRoot, or nil; it tells
// nothing about whether the path exists.
func Confine(root, path string) error {
	if root == "" {
		return ErrOutsideRoot
	}
	absRoot, err1 := filepath.Abs(root)
	abs, err2 := filepath.Abs(path)
	if err1 != nil || err2 != nil {
		return ErrOutsideRoot
	}
	rel, err := filepath.Rel(absRoot, abs)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return ErrOutsideRoot
	}
	r, err := os.OpenRoot(absRoot)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // nothing below it exists either
	}
	if err != nil {
		return ErrOutsideRoot
	}
	defer r.Close()
	// os.Root follows links only while they stay inside it: the longest
	// part of the path that exists must resolve within.
	for p := rel; p != "."; p = filepath.Dir(p) {
		_, err := r.Stat(p)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
			// Not there (or under a file): the sink finds out what it
			// cannot create, and says so.
		default:
			return ErrOutsideRoot
		}
	}
	return nil
}
