package file

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/sinkbus/sinkbus/field"
	"github.com/sinkbus/sinkbus/internal/dirlock"
	"github.com/sinkbus/sinkbus/sinks"
)

// LockName is the lock file New keeps in its directory.
const LockName = dirlock.Name

// ErrDirInUse is returned by LockDir (and, as a field error, by New) when
// another sink, in this process or another, holds the directory.
var ErrDirInUse = errors.New("sinkbus: file: directory in use by another sink")

// DirLock is the exclusive hold on a directory that New takes, so that two
// sinks never write, and never recover, each other's files. It is the lock
// every directory of sinkbus takes (internal/dirlock): the operating system
// releases it when the process dies, so a crash leaves no stale lock.
type DirLock struct{ l *dirlock.Lock }

// LockDir creates dir if need be and takes its lock, a LockName file in it.
// It fails at once, with an error matching ErrDirInUse and naming the
// holder's process, while another DirLock holds dir. On Linux and the BSDs
// the lock holds across processes (flock); elsewhere only within this
// process.
func LockDir(dir string) (*DirLock, error) {
	l, err := dirlock.Acquire(dir, 0)
	if errors.Is(err, dirlock.ErrLocked) {
		return nil, fmt.Errorf("%w: %w", ErrDirInUse, err)
	}
	if err != nil {
		return nil, err
	}
	return &DirLock{l: l}, nil
}

// DirError turns an error of LockDir into a field error of name, the
// configuration's mistake: a directory in use by another sink, or one that
// cannot be created or written. The cause, path included, goes to
// env.Logger; the field error does not name the path.
func DirError(name string, err error, env sinks.Env) error {
	if errors.Is(err, ErrDirInUse) {
		return field.New(name, "is in use by another sink: one file or s3 sink at a time may use a directory")
	}
	env.Defaults().Logger.Error("Cannot use the directory of a file or s3 sink", err,
		watermill.LogFields{"integration_id": env.IntegrationID})
	rule := "cannot be created or written"
	var pe *fs.PathError
	if errors.As(err, &pe) {
		rule += ": " + pe.Err.Error()
	}
	return field.New(name, "%s", rule)
}

// Dir returns the locked directory.
func (l *DirLock) Dir() string { return l.l.Dir() }

// Unlock releases the lock; the lock file stays. It is idempotent.
func (l *DirLock) Unlock() error {
	if l == nil {
		return nil
	}
	return l.l.Release()
}

// RemoveFiles removes the export files under dir, finished and temporary,
// and the directories that leaves empty below dir, and returns how many
// files it removed. It holds dir's lock meanwhile, so it fails (ErrDirInUse)
// while a sink uses dir. Other files, dir itself and its lock file stay.
// A dir that does not exist has nothing to remove.
func RemoveFiles(dir string) (int, error) {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	lock, err := LockDir(dir)
	if err != nil {
		return 0, err
	}
	defer lock.Unlock()
	var files int
	var dirs []string
	var errs []error
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			errs = append(errs, err)
		case d.IsDir():
			if path != dir {
				dirs = append(dirs, path)
			}
		case d.Type().IsRegular() && (FileNamePattern.MatchString(d.Name()) || tmpNamePattern.MatchString(d.Name())):
			if err := os.Remove(path); err != nil {
				errs = append(errs, err)
			} else {
				files++
			}
		}
		return nil
	})
	errs = append(errs, err)
	for i := len(dirs) - 1; i >= 0; i-- { // deepest first
		_ = os.Remove(dirs[i]) // fails, as it should, when something else is left in it
	}
	if err := errors.Join(errs...); err != nil {
		return files, fmt.Errorf("sinkbus: file: remove files of %s: %w", dir, err)
	}
	return files, nil
}
