// Package dirlock holds a directory for one holder at a time: a bus's
// DataDir, a journal directory, a file sink's export directory, an s3
// spool. Two holders writing one directory destroy each other's data (two
// journals numbering their own records into one segment, two sinks
// recovering each other's files), so every such directory is locked with
// this one implementation.
//
// The lock is an exclusive flock on a file in the directory. It belongs to
// the open file, so it excludes other processes and other holders in this
// process alike, and the operating system releases it when the process
// dies: a crash leaves no stale lock. The holder writes its pid into the
// file, so that the one refused can say who holds it. Without flock (not
// Linux, not a BSD) the lock holds within this process only.
package dirlock

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Name is the lock file kept in a locked directory.
const Name = ".sinkbus.lock"

// ErrLocked is matched by the error of Acquire when another holder has the
// directory.
var ErrLocked = errors.New("sinkbus: directory locked")

// HeldError says who holds a directory Acquire could not lock.
type HeldError struct {
	Dir string
	// PID is the holder's process id; zero when it cannot be known (the
	// holder has not written it yet, or the platform has no flock).
	PID int
}

func (e *HeldError) Error() string {
	switch e.PID {
	case 0:
		return fmt.Sprintf("%s is held by another process or component", e.Dir)
	case os.Getpid():
		return fmt.Sprintf("%s is held by another component of this process (pid %d)", e.Dir, e.PID)
	}
	return fmt.Sprintf("%s is held by process %d", e.Dir, e.PID)
}

// Is makes a HeldError match ErrLocked.
func (e *HeldError) Is(target error) bool { return target == ErrLocked }

// Lock is the hold on one directory.
type Lock struct {
	dir  string
	f    *os.File
	done bool
}

// retryEvery is how often Acquire tries again while it waits.
const retryEvery = 50 * time.Millisecond

// Acquire creates dir if need be and locks it. While another holder has
// it, Acquire tries again for up to wait (wall-clock time: it is about
// processes handing over, whatever clock the caller runs on), then fails
// with a *HeldError, which matches ErrLocked.
func Acquire(dir string, wait time.Duration) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("sinkbus: lock %s: %w", dir, err)
	}
	path := filepath.Join(dir, Name)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("sinkbus: lock %s: %w", dir, err)
	}
	deadline := time.Now().Add(wait)
	for {
		err := lockFile(f)
		if err == nil {
			break
		}
		if !errors.Is(err, errLocked) {
			f.Close()
			return nil, fmt.Errorf("sinkbus: lock %s: %w", dir, err)
		}
		if !time.Now().Before(deadline) {
			held := &HeldError{Dir: dir, PID: holder(f)}
			f.Close()
			return nil, held
		}
		time.Sleep(min(retryEvery, time.Until(deadline)))
	}
	// Who holds it, for the next one refused. Best effort: the lock holds
	// without it.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Lock{dir: dir, f: f}, nil
}

// holder reads the pid the holder wrote into the lock file.
func holder(f *os.File) int {
	var buf [32]byte
	n, _ := f.ReadAt(buf[:], 0)
	pid, err := strconv.Atoi(string(bytes.TrimSpace(buf[:n])))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// Dir returns the locked directory.
func (l *Lock) Dir() string { return l.dir }

// Release releases the lock; the lock file stays. It is idempotent.
func (l *Lock) Release() error {
	if l == nil || l.done {
		return nil
	}
	l.done = true
	_ = l.f.Truncate(0) // no pid of a holder that has gone
	err := unlockFile(l.f)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	return err
}
