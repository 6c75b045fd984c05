//go:build !(linux || darwin || dragonfly || freebsd || netbsd || openbsd)

package dirlock

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
)

// Without flock the lock holds within this process only: a registry of the
// lock files held, by absolute path.
var (
	errLocked = errors.New("locked")
	heldMu    sync.Mutex
	held      = map[string]bool{}
)

func lockKey(f *os.File) string {
	if abs, err := filepath.Abs(f.Name()); err == nil {
		return abs
	}
	return f.Name()
}

func lockFile(f *os.File) error {
	heldMu.Lock()
	defer heldMu.Unlock()
	k := lockKey(f)
	if held[k] {
		return errLocked
	}
	held[k] = true
	return nil
}

func unlockFile(f *os.File) error {
	heldMu.Lock()
	defer heldMu.Unlock()
	delete(held, lockKey(f))
	return nil
}
