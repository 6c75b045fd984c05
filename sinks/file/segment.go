package file

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sinkbus/sinkbus/internal/atomicfile"
)

const (
	tmpSuffix  = ".tmp"
	bufferSize = 64 << 10
)

// FileNamePattern matches the name of a finished file.
var FileNamePattern = regexp.MustCompile(`^\d{13,}-data-[a-z0-9]+\.export$`)

// fileName is {epoch_ms}-data-{random}.export, random being 16 hex digits
// so that files a tenant starts in the same millisecond differ.
func fileName(created time.Time) string {
	return fmt.Sprintf("%013d-data-%016x.export", created.UnixMilli(), rand.Uint64())
}

// maxSegment bounds a path segment well below the 255 bytes file systems allow.
const maxSegment = 128

// PathSegment returns s as one safe path segment (and S3 key segment): "default"
// when empty; bytes other than letters, digits, '-', '_' and '.' (and a leading
// '.') percent-encoded, so distinct tenants get distinct directories; a long
// result shortened and suffixed with a hash of s.
func PathSegment(s string) string {
	if s == "" {
		return "default"
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isSegmentSafe(c) && (i > 0 || c != '.') {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	out := b.String()
	if len(out) > maxSegment {
		sum := sha256.Sum256([]byte(s))
		out = out[:maxSegment-17] + "~" + hex.EncodeToString(sum[:8])
	}
	return out
}

func isSegmentSafe(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '_' || c == '.'
}

// tenant is one tenant's open file.
type tenant struct {
	dir    string
	mu     sync.Mutex // serialises appends and rotation
	cur    *segment   // nil between files
	synced bool       // the directories down to dir are durable
}

// segment is an open file. Publish appends lines to an in-memory buffer
// (under tenant.mu, which orders them) and then commits: one caller, the
// leader, takes every line buffered so far, writes it in one call and syncs
// once; callers arriving meanwhile wait and are all woken when it is done,
// their lines either committed by it or taken by the next leader. Lock
// order: tenant.mu, then mu.
type segment struct {
	f          *os.File
	tmp, final string
	created    time.Time
	sync       bool          // sync each commit (FsyncBatch, FsyncEvent)
	gather     bool          // let concurrent callers join a commit (not FsyncEvent)
	size       int64         // bytes appended; under tenant.mu
	bad        atomic.Bool   // a write or sync failed: start a new file
	done       chan struct{} // closed when finished, stops the age timer

	mu         sync.Mutex
	cond       sync.Cond // on mu: a commit ended
	buf        []byte    // appended lines not yet written
	spare      []byte    // the previous buf, reused
	appended   int64     // end offset of the last appended line
	committed  int64     // end offset of the lines written (and synced, if asked)
	written    int64     // bytes in the file
	committing bool      // a leader is writing outside mu
	err        error     // the failure that lost the lines after committed
	dirty      bool      // the file may hold part of a failed write
	closed     bool
}

// commitPoint is a line that must be committed before Publish returns.
type commitPoint struct {
	seg *segment
	end int64
}

// addCommitPoint records cp, keeping one point (the furthest) per segment.
func addCommitPoint(pts []commitPoint, cp commitPoint) []commitPoint {
	for i := range pts {
		if pts[i].seg == cp.seg {
			pts[i].end = max(pts[i].end, cp.end)
			return pts
		}
	}
	return append(pts, cp)
}

// append buffers line and returns where it ends. Called with tenant.mu held.
func (s *segment) append(line []byte) int64 {
	s.mu.Lock()
	s.buf = append(s.buf, line...)
	s.appended += int64(len(line))
	end := s.appended
	s.mu.Unlock()
	s.size += int64(len(line))
	return end
}

// commit returns once the lines up to end are written to the OS, and synced
// when the policy says so.
func (s *segment) commit(end int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		switch {
		case s.committed >= end:
			return nil
		case s.err != nil:
			return s.err
		case s.closed:
			return fmt.Errorf("sinkbus: file: %s closed before its lines were written", s.tmp)
		case s.committing:
			s.cond.Wait()
		default:
			s.lead()
		}
	}
}

// lead writes (and syncs) what is buffered. Called with mu held and no
// commit running; mu is released during the I/O.
func (s *segment) lead() {
	s.committing = true
	if s.gather {
		// The callers the last commit woke are appending their next lines:
		// let them, so that this sync carries them too.
		s.mu.Unlock()
		runtime.Gosched()
		s.mu.Lock()
	}
	batch, upTo := s.buf, s.appended
	s.buf = s.spare[:0]
	s.mu.Unlock()

	_, err := s.f.Write(batch)
	if err == nil && s.sync {
		err = s.f.Sync()
	}

	s.mu.Lock()
	s.committing = false
	s.cond.Broadcast()
	if cap(batch) <= maxSpare {
		s.spare = batch[:0]
	}
	if err != nil {
		s.fail(err)
		return
	}
	s.written += int64(len(batch))
	s.committed = upTo
}

// maxSpare bounds the buffer a segment keeps between commits.
const maxSpare = 1 << 20

// fail records err as the loss of every uncommitted line, and cuts the file
// back to its committed lines so that no half line stays. Called with mu held.
func (s *segment) fail(err error) {
	s.err = fmt.Errorf("sinkbus: file: write %s: %w", s.tmp, err)
	s.bad.Store(true)
	if terr := s.f.Truncate(s.written); terr != nil {
		s.dirty = true
	}
}

// finish writes what is buffered, syncs, closes and renames the file. It
// returns the final path once renamed (even when making the rename durable
// failed), or "" for an empty file, which it removes. On failure the
// temporary file stays for the next New to complete.
func (s *segment) finish() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.committing {
		s.cond.Wait()
	}
	if s.closed {
		return "", nil
	}
	s.closed = true
	defer s.cond.Broadcast()

	var err error // a failure of this call; an earlier one was reported then
	if s.err == nil && len(s.buf) > 0 {
		if _, werr := s.f.Write(s.buf); werr != nil {
			s.fail(werr)
			err = s.err
		} else {
			s.written += int64(len(s.buf))
		}
	}
	if !s.dirty {
		if serr := s.f.Sync(); serr != nil {
			serr = fmt.Errorf("sinkbus: file: sync %s: %w", s.tmp, serr)
			if s.err == nil {
				s.err = serr
			}
			err = errors.Join(err, serr)
			s.dirty = true // the written lines are not known to be durable
		}
	}
	if s.err == nil {
		s.committed = s.appended
	}
	cerr := s.f.Close()
	s.buf, s.spare = nil, nil
	if s.dirty {
		return "", err
	}
	if cerr != nil {
		return "", fmt.Errorf("sinkbus: file: finish %s: %w", s.tmp, cerr)
	}
	if s.written == 0 {
		return "", errors.Join(err, os.Remove(s.tmp))
	}
	if rerr := os.Rename(s.tmp, s.final); rerr != nil {
		return "", errors.Join(err, fmt.Errorf("sinkbus: file: finish %s: %w", s.tmp, rerr))
	}
	if derr := atomicfile.SyncDir(filepath.Dir(s.final)); derr != nil {
		err = errors.Join(err, fmt.Errorf("sinkbus: file: finish %s: %w", s.final, derr))
	}
	return s.final, err
}
