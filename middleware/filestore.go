package middleware

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sinkbus/sinkbus/internal/atomicfile"
)

// fileDir keeps one JSON document per integration in a directory. A document
// is written to a temporary file and renamed over the old one, so a crash
// leaves either the old or the new document, never half of one.
type fileDir struct {
	dir    string
	suffix string // ".log.json", ".rejected.json"
	sync   bool   // fsync before rename: the document is acknowledged data
}

func openFileDir(dir, suffix string, sync bool) (fileDir, error) {
	if dir == "" {
		return fileDir{}, fmt.Errorf("sinkbus: store directory is empty")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fileDir{}, fmt.Errorf("sinkbus: store directory: %w", err)
	}
	atomicfile.RemoveStale(dir) // left by a crash between write and rename
	return fileDir{dir: dir, suffix: suffix, sync: sync}, nil
}

// path returns the file of integrationID. Bytes other than [a-z0-9-] are
// escaped as _XX, so any id names exactly one file inside dir.
func (d fileDir) path(integrationID string) string {
	var b strings.Builder
	for i := 0; i < len(integrationID); i++ {
		c := integrationID[i]
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "_%02X", c)
	}
	return filepath.Join(d.dir, b.String()+d.suffix)
}

// write replaces the document of integrationID with v.
func (d fileDir) write(integrationID string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(d.path(integrationID), data, 0o600, d.sync)
}

// remove deletes the document of integrationID, if any.
func (d fileDir) remove(integrationID string) error {
	err := os.Remove(d.path(integrationID))
	if err == nil || os.IsNotExist(err) {
		return nil
	}
	return err
}

// UnreadableSuffix is added to the name of a stored document that cannot be
// decoded, so that opening the store does not fail on it again.
const UnreadableSuffix = ".unreadable"

// load calls fn with the content of every document in the directory. A
// document fn refuses is renamed with UnreadableSuffix, left for
// inspection, and returned with why in unreadable: it must not keep the
// bus from starting, and it is not lost.
func (d fileDir) load(fn func(data []byte) error) (unreadable []error, err error) {
	entries, err := os.ReadDir(d.dir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, d.suffix) || atomicfile.IsTemp(name) {
			continue
		}
		p := filepath.Join(d.dir, name)
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		if err := fn(data); err != nil {
			if rerr := os.Rename(p, p+UnreadableSuffix); rerr != nil {
				return nil, fmt.Errorf("sinkbus: %s: %w (and it cannot be set aside: %w)", p, err, rerr)
			}
			unreadable = append(unreadable, fmt.Errorf("sinkbus: %s cannot be read, set aside as %s: %w", p, p+UnreadableSuffix, err))
		}
	}
	return unreadable, nil
}
