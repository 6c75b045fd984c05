package file

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/sinkbus/sinkbus/internal/atomicfile"
)

var tmpNamePattern = regexp.MustCompile(`^\d{13,}-data-[a-z0-9]+\.export\.tmp$`)

// recoverDir completes the temporary files a previous run left under dir
// and returns their final paths, oldest first.
func (p *Publisher) recoverDir(dir string) ([]string, error) {
	var tmps []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == dir && errors.Is(err, fs.ErrNotExist) {
				return filepath.SkipDir
			}
			return err
		}
		if d.Type().IsRegular() && tmpNamePattern.MatchString(d.Name()) {
			tmps = append(tmps, path)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sinkbus: file: recover %s: %w", dir, err)
	}
	sort.Slice(tmps, func(i, j int) bool { return filepath.Base(tmps[i]) < filepath.Base(tmps[j]) })
	var finished []string
	for _, tmp := range tmps {
		path, kept, dropped, err := completeFile(tmp)
		if err != nil {
			return finished, fmt.Errorf("sinkbus: file: recover %s: %w", tmp, err)
		}
		p.log.Info("Completed an export file left open by a previous run", watermill.LogFields{
			"path": tmp, "bytes_kept": kept, "bytes_dropped": dropped,
		})
		if path != "" {
			finished = append(finished, path)
		}
	}
	return finished, nil
}

// completeFile cuts the temporary file tmp after its last newline, syncs it
// and gives it its final name. A file without a whole line is removed and
// "" returned.
func completeFile(tmp string) (path string, kept, dropped int64, err error) {
	f, err := os.OpenFile(tmp, os.O_RDWR, 0)
	if err != nil {
		return "", 0, 0, err
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	info, err := f.Stat()
	if err != nil {
		return "", 0, 0, err
	}
	kept, err = wholeLines(f, info.Size())
	if err != nil {
		return "", 0, 0, err
	}
	dropped = info.Size() - kept
	if kept == 0 {
		return "", 0, dropped, os.Remove(tmp)
	}
	if dropped > 0 {
		if err := f.Truncate(kept); err != nil {
			return "", 0, 0, err
		}
	}
	if err := f.Sync(); err != nil {
		return "", 0, 0, err
	}
	path = tmp[:len(tmp)-len(tmpSuffix)]
	if err := os.Rename(tmp, path); err != nil {
		return "", 0, 0, err
	}
	return path, kept, dropped, atomicfile.SyncDir(filepath.Dir(path))
}

// wholeLines returns the length of r's first size bytes up to and including
// their last '\n', reading backwards.
func wholeLines(r io.ReaderAt, size int64) (int64, error) {
	buf := make([]byte, 64<<10)
	for end := size; end > 0; {
		start := max(end-int64(len(buf)), 0)
		chunk := buf[:end-start]
		if _, err := r.ReadAt(chunk, start); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		if i := bytes.LastIndexByte(chunk, '\n'); i >= 0 {
			return start + int64(i) + 1, nil
		}
		end = start
	}
	return 0, nil
}
