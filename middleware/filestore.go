package middleware

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/sinkbus/sinkbus/internal/atomicfile"
)

// The file stores (FileLog, FileRejected) keep each integration's state as
// an append-only log of changes, one record per change, so a change costs
// in proportion to itself: rewriting a whole document per change cost a
// rejection of a 1 MiB payload the rewrite (and fsync) of every event kept.
// Each integration has a directory of segment files, its own lock and its
// own writer; readers see the last state written without taking a lock, so
// a listing never waits behind a write. Concurrent changes of one
// integration share one write and, when the store syncs, one fsync (group
// commit, as the journal does).
//
// The log does not grow without end. A segment is retired (deleted) once
// no record in it is needed any more: the rejected store evicts its oldest
// events first, so old segments die as new ones fill, and that costs no
// write at all. Whatever keeps an old segment alive (a log, which is
// compacted only; an event never evicted), once the segments hold more than
// twice what the state needs they are compacted: the state's records are
// written to a new segment and the older ones deleted, a rewrite paid for
// by the appends before it.
//
// A record is a frame, little-endian: u32 length of the body, u32 CRC-32C
// of the body, the body. A crash can leave only a torn last frame, which
// was never acknowledged: opening cuts a segment at the first frame that is
// cut short or fails its checksum.

// errStoreClosed is returned by a change of an integration whose file was
// dropped or closed while the change waited.
var errStoreClosed = errors.New("sinkbus: store closed")

// UnreadableSuffix is added to the name of what a store keeps and cannot
// decode (a document of the former format, an integration's directory of
// segments), so that opening the store does not fail on it again.
const UnreadableSuffix = ".unreadable"

// undecodable marks an error of decoding a record whose frame is sound: the
// integration's segments are set aside, not the store refused.
type undecodable struct{ err error }

func (e undecodable) Error() string { return e.err.Error() }
func (e undecodable) Unwrap() error { return e.err }

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// frameHeader is the length and checksum in front of each body.
const frameHeader = 8

// frameHead returns the header in front of body: its length and checksum.
func frameHead(body []byte) []byte {
	h := make([]byte, frameHeader)
	binary.LittleEndian.PutUint32(h[:4], uint32(len(body)))
	binary.LittleEndian.PutUint32(h[4:], crc32.Checksum(body, castagnoli))
	return h
}

// readFrames calls each with the body of every sound frame of r, which
// holds size bytes, in order, and returns how many bytes they take: where a
// torn or corrupt tail starts.
func readFrames(r io.Reader, size int64, each func(body []byte) error) (int64, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var good int64
	var h [frameHeader]byte
	var body []byte
	for {
		if _, err := io.ReadFull(br, h[:]); err != nil {
			return good, nil // the end, or a torn header
		}
		n := binary.LittleEndian.Uint32(h[:4])
		if int64(n) > size-good-frameHeader { // past the end: torn, or damage
			return good, nil
		}
		if cap(body) < int(n) {
			body = make([]byte, n)
		}
		body = body[:n]
		if _, err := io.ReadFull(br, body); err != nil {
			return good, nil // torn body
		}
		if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(h[4:]) {
			return good, nil
		}
		if err := each(body); err != nil {
			return good, err
		}
		good += int64(frameHeader) + int64(n)
	}
}

// segFile is one segment of an integration's log.
type segFile struct {
	n    uint64
	f    *os.File
	size int64
}

// segSuffix ends the name of a segment file: <number, 20 digits>.seg.
const segSuffix = ".seg"

// segLog is one integration's directory of segments. Its methods are
// called with the docLog's lock held, but for sync.
type segLog struct {
	dir      string
	sync     bool  // fsync what is written: the records are acknowledged data
	segBytes int64 // a segment takes no more records past this size
	segs     []*segFile
	written  int64 // bytes appended since open, whatever segment: positions for syncTo
	// broken: an append failed and the segment could not be cut back; the
	// next record starts a new segment.
	broken bool
}

// openSegLog opens (creating) dir, calls each with every record of its
// segments in order, and cuts a torn or corrupt tail off each.
func openSegLog(dir string, sync bool, segBytes int64, each func(body []byte, seg uint64) error) (*segLog, error) {
	l := &segLog{dir: dir, sync: sync, segBytes: segBytes}
	if _, err := os.Stat(dir); os.IsNotExist(err) {
		if err := os.Mkdir(dir, 0o700); err != nil {
			return nil, err
		}
		if sync { // the segments synced in it must not vanish with it
			if err := syncDir(filepath.Dir(dir)); err != nil {
				return nil, err
			}
		}
	}
	entries, err := os.ReadDir(dir) // sorted by name: by segment number
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		name := e.Name()
		n, err := strconv.ParseUint(strings.TrimSuffix(name, segSuffix), 10, 64)
		if e.IsDir() || !strings.HasSuffix(name, segSuffix) || err != nil {
			continue // a temporary file a crash left, or not ours
		}
		if err := l.openSeg(n, each); err != nil {
			l.close()
			return nil, err
		}
	}
	return l, nil
}

func (l *segLog) segPath(n uint64) string {
	return filepath.Join(l.dir, fmt.Sprintf("%020d%s", n, segSuffix))
}

func (l *segLog) openSeg(n uint64, each func(body []byte, seg uint64) error) error {
	path := l.segPath(n)
	f, err := os.OpenFile(path, os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	var good int64
	if err == nil {
		good, err = readFrames(f, st.Size(), func(body []byte) error { return each(body, n) })
	}
	if err == nil && st.Size() > good {
		err = f.Truncate(good)
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("sinkbus: %s: %w", path, err)
	}
	l.segs = append(l.segs, &segFile{n: n, f: f, size: good})
	return nil
}

// current returns the segment the next record goes to, starting a new one
// when the last is full (or damaged).
func (l *segLog) current() (*segFile, error) {
	if n := len(l.segs); n > 0 && !l.broken && l.segs[n-1].size < l.segBytes {
		return l.segs[n-1], nil
	}
	return l.newSeg()
}

// newSeg starts the next segment, once the one before is synced (only the
// newest can have records not yet synced); its name is made durable before
// anything is written to it.
func (l *segLog) newSeg() (*segFile, error) {
	n := uint64(1)
	if k := len(l.segs); k > 0 {
		n = l.segs[k-1].n + 1
		if l.sync {
			if err := l.segs[k-1].f.Sync(); err != nil {
				return nil, err
			}
		}
	}
	f, err := os.OpenFile(l.segPath(n), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	if l.sync {
		if err := syncDir(l.dir); err != nil {
			f.Close()
			return nil, err
		}
	}
	seg := &segFile{n: n, f: f}
	l.segs = append(l.segs, seg)
	l.broken = false
	return seg, nil
}

// append writes records at the end of seg, each framed, to the operating
// system: sync makes them durable. A record is written with its frame
// header in front of it, not copied next to it: rejected payloads are
// large. On failure the segment is cut back to what it held, so that the
// next record follows a sound one.
func (l *segLog) append(seg *segFile, recs ...[]byte) error {
	at := seg.size
	var err error
	for _, rec := range recs {
		if _, err = seg.f.WriteAt(frameHead(rec), at); err != nil {
			break
		}
		if _, err = seg.f.WriteAt(rec, at+frameHeader); err != nil {
			break
		}
		at += frameHeader + int64(len(rec))
	}
	if err != nil {
		if seg.f.Truncate(seg.size) != nil {
			l.broken = true
		}
		return fmt.Errorf("sinkbus: %s: %w", l.segPath(seg.n), err)
	}
	l.written += at - seg.size
	seg.size = at
	return nil
}

// size is what the segments hold.
func (l *segLog) size() int64 {
	var n int64
	for _, seg := range l.segs {
		n += seg.size
	}
	return n
}

// retire deletes the segments before keep, oldest first, never the one
// being written.
func (l *segLog) retire(keep uint64) error {
	var err error
	for len(l.segs) > 1 && l.segs[0].n < keep {
		seg := l.segs[0]
		seg.f.Close()
		if err = os.Remove(l.segPath(seg.n)); err != nil && !os.IsNotExist(err) {
			break
		}
		// One at a time, durably: after a crash the segments left are
		// always the newest ones, whose records say what became of the
		// older ones' records.
		if l.sync {
			if err = syncDir(l.dir); err != nil {
				break
			}
		}
		l.segs = l.segs[1:]
		err = nil
	}
	return err
}

func (l *segLog) close() error {
	var errs []error
	for _, seg := range l.segs {
		errs = append(errs, seg.f.Close())
	}
	return errors.Join(errs...)
}

func syncDir(dir string) error {
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

// docLog is one integration's state of type S in a segLog. S values are
// never changed in place: a change makes a new one.
//
// A change is computed and written under the lock, so records are written
// in the order of the changes, and synced outside it: a caller's fsync
// makes its record durable with every record written before it, and one
// fsync serves every caller whose record it covers (group commit), while
// the next records are written. So concurrent rejections overlap their
// writes with each other's fsync, as writers of one file each syncing do.
type docLog[S any] struct {
	codec docCodec[S]
	empty S
	view  atomic.Pointer[published[S]] // the last state synced: what readers see

	mu      sync.Mutex
	log     *segLog
	state   S      // the last state written
	version uint64 // of state
	closed  bool

	syncMu sync.Mutex
	synced int64 // log.written up to which records are durable
}

// published is a state with its version: a later one never gives way to
// an earlier one.
type published[S any] struct {
	version uint64
	state   S
}

// docCodec is how a store turns its state into records and back.
type docCodec[S any] struct {
	// apply replays one record, found in segment seg, on s.
	apply func(s S, body []byte, seg uint64) (S, error)
	// oldest is the oldest segment holding a record s needs, so that the
	// older ones can go; nil when s does not know (they go by compaction).
	oldest func(s S) (seg uint64, ok bool)
	// records are the records that rebuild s from nothing, for compaction.
	records func(s S) [][]byte
	// bytes is about what s takes as records: the segments are compacted
	// past twice that.
	bytes func(s S) int64
}

// compactSlack is what the segments may hold beyond twice the state before
// they are compacted: small states are not rewritten at every change.
const compactSlack = 64 << 10

func newDocLog[S any](log *segLog, empty, state S, codec docCodec[S]) *docLog[S] {
	d := &docLog[S]{log: log, empty: empty, codec: codec, state: state, synced: log.written}
	d.view.Store(&published[S]{state: state})
	return d
}

// read returns the last state synced, without waiting for any write.
func (d *docLog[S]) read() S { return d.view.Load().state }

// change applies fn to the state: fn returns the state after the change,
// whose record (nil: nothing to write) goes to segment seg, and the
// caller's result; an error refuses the change. change returns once the
// record is written (and synced, when the log syncs), with fn's result.
// Changes of one docLog are applied in the order they take its lock. A
// change whose record cannot be written changes nothing; one written but
// not synced returns the error and stays.
func (d *docLog[S]) change(fn func(s S, seg uint64) (S, []byte, any, error)) (any, error) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil, errStoreClosed
	}
	seg, err := d.log.current()
	if err != nil {
		d.mu.Unlock()
		return nil, err
	}
	next, rec, result, err := fn(d.state, seg.n)
	if err == nil && rec != nil {
		err = d.log.append(seg, rec)
	}
	if err != nil {
		d.mu.Unlock()
		return nil, err
	}
	next = d.tidy(next)
	d.state = next
	d.version++
	version, end := d.version, d.log.written
	d.mu.Unlock()

	if err := d.syncTo(end); err != nil {
		return nil, err
	}
	for {
		cur := d.view.Load()
		if cur.version >= version || d.view.CompareAndSwap(cur, &published[S]{version, next}) {
			return result, nil
		}
	}
}

// syncTo makes the records written up to end durable, sharing the fsync
// of concurrent callers.
func (d *docLog[S]) syncTo(end int64) error {
	if !d.log.sync {
		return nil
	}
	d.syncMu.Lock()
	defer d.syncMu.Unlock()
	if d.synced >= end {
		return nil // an fsync since covered it
	}
	d.mu.Lock()
	target, seg := d.log.written, d.log.segs[len(d.log.segs)-1]
	d.mu.Unlock()
	// Older segments were synced when the next one started; if seg has
	// been retired since (closed), it was synced then too.
	if err := seg.f.Sync(); err != nil && !errors.Is(err, os.ErrClosed) {
		return fmt.Errorf("sinkbus: %s: %w", d.log.segPath(seg.n), err)
	}
	d.synced = target
	return nil
}

// tidy retires the segments state no longer needs, and compacts when what
// is left holds more than twice the state. It returns the state as the
// segments now hold it. Failures leave the segments as they were, which
// still hold the state. d.mu is held.
func (d *docLog[S]) tidy(state S) S {
	if d.codec.oldest != nil {
		keep, ok := d.codec.oldest(state)
		if !ok {
			keep = d.log.segs[len(d.log.segs)-1].n
		}
		_ = d.log.retire(keep)
	}
	if d.log.size() <= 2*d.codec.bytes(state)+compactSlack {
		return state
	}
	seg, err := d.log.newSeg()
	if err != nil {
		return state
	}
	compacted := d.empty
	recs := d.codec.records(state)
	for _, rec := range recs {
		if compacted, err = d.codec.apply(compacted, rec, seg.n); err != nil {
			return state // cannot happen: the records are the codec's own
		}
	}
	if len(recs) > 0 {
		if err := d.log.append(seg, recs...); err != nil {
			return state
		}
	}
	if d.log.sync {
		if err := seg.f.Sync(); err != nil {
			return state // the older segments stay: they hold the state
		}
	}
	_ = d.log.retire(seg.n)
	return compacted
}

// close refuses later changes, syncs what was written and closes the
// segments; remove also deletes them with their directory.
func (d *docLog[S]) close(remove bool) error {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	d.syncMu.Lock()
	defer d.syncMu.Unlock()
	var err error
	if d.log.sync && len(d.log.segs) > 0 {
		err = d.log.segs[len(d.log.segs)-1].f.Sync()
	}
	d.synced = d.log.written // changes still syncing find nothing left to do
	err = errors.Join(err, d.log.close())
	if remove {
		err = errors.Join(err, os.RemoveAll(d.log.dir))
	}
	return err
}

// docDir keeps the docLogs of every integration of one store in a
// directory, a directory of segments each, named after the integration
// with the store's suffix. Its lock guards the map only.
type docDir[S any] struct {
	dir      string
	suffix   string // ".log", ".rejected": two stores may share a directory
	sync     bool
	segBytes int64
	empty    S
	codec    docCodec[S]

	mu   sync.RWMutex
	docs map[string]*docLog[S]

	unreadable []error // what opening set aside
}

// openDocDir opens (creating it) dir and every integration's segments in
// it. Files of the format before these (oldSuffix, one JSON document per
// integration) are converted by readOld, written as segments and removed.
// What cannot be decoded (a document, an integration's segments) is
// renamed with UnreadableSuffix and reported in unreadable: it must not
// keep the bus from starting, and it is not lost.
func openDocDir[S any](dir, suffix string, sync bool, segBytes int64, empty S, codec docCodec[S],
	oldSuffix string, readOld func(data []byte) (string, S, error)) (*docDir[S], error) {
	if dir == "" {
		return nil, fmt.Errorf("sinkbus: store directory is empty")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("sinkbus: store directory: %w", err)
	}
	atomicfile.RemoveStale(dir) // left by a crash of the former format between write and rename
	s := &docDir[S]{dir: dir, suffix: suffix, sync: sync, segBytes: segBytes, empty: empty, codec: codec,
		docs: make(map[string]*docLog[S])}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		name := e.Name()
		var err error
		switch {
		case e.IsDir() && strings.HasSuffix(name, suffix):
			if id, ok := unescapeID(strings.TrimSuffix(name, suffix)); ok {
				_, err = s.open(id)
			}
		case !e.IsDir() && strings.HasSuffix(name, oldSuffix) && !atomicfile.IsTemp(name):
			err = s.convert(filepath.Join(dir, name), readOld)
		}
		var u undecodable
		if errors.As(err, &u) {
			err = s.setAside(filepath.Join(dir, name), u)
		}
		if err != nil {
			s.close()
			return nil, err
		}
	}
	return s, nil
}

// setAside renames path, which could not be decoded, out of the store's
// way and reports it.
func (s *docDir[S]) setAside(path string, why error) error {
	if err := os.Rename(path, path+UnreadableSuffix); err != nil {
		return fmt.Errorf("sinkbus: %s: %w (and it cannot be set aside: %w)", path, why, err)
	}
	s.unreadable = append(s.unreadable, fmt.Errorf("sinkbus: %s cannot be read, set aside as %s: %w", path, path+UnreadableSuffix, why))
	return nil
}

// convert writes a document of the former format as segments.
func (s *docDir[S]) convert(path string, readOld func([]byte) (string, S, error)) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	id, state, err := readOld(data)
	if err != nil {
		return undecodable{err}
	}
	d := s.docs[id]
	if d == nil {
		if d, err = s.open(id); err != nil {
			return err
		}
	}
	for _, rec := range s.codec.records(state) { // one change each: the state keeps the segment of each
		_, err := d.change(func(cur S, seg uint64) (S, []byte, any, error) {
			next, err := s.codec.apply(cur, rec, seg)
			return next, rec, nil, err
		})
		if err != nil {
			return err
		}
	}
	return os.Remove(path)
}

// open opens the segments of id, replaying their records; s.mu is held or
// s is not shared yet.
func (s *docDir[S]) open(id string) (*docLog[S], error) {
	state := s.empty
	log, err := openSegLog(s.idDir(id), s.sync, s.segBytes, func(body []byte, seg uint64) error {
		next, err := s.codec.apply(state, body, seg)
		if err != nil {
			return undecodable{err}
		}
		state = next
		return nil
	})
	if err != nil {
		return nil, err
	}
	d := newDocLog(log, s.empty, state, s.codec)
	s.docs[id] = d
	return d, nil
}

// lookup returns the docLog of id, or nil.
func (s *docDir[S]) lookup(id string) *docLog[S] {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.docs[id]
}

// read returns the state of id, empty when it has none.
func (s *docDir[S]) read(id string) S {
	if d := s.lookup(id); d != nil {
		return d.read()
	}
	return s.empty
}

// change applies a change to id's state, creating its segments if need be.
func (s *docDir[S]) change(id string, fn func(s S, seg uint64) (S, []byte, any, error)) (any, error) {
	d := s.lookup(id)
	if d == nil {
		s.mu.Lock()
		var err error
		if d = s.docs[id]; d == nil {
			d, err = s.open(id)
		}
		s.mu.Unlock()
		if err != nil {
			return nil, err
		}
	}
	return d.change(fn)
}

// drop forgets id's state and removes its segments, once a write under way
// has ended.
func (s *docDir[S]) drop(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock() // a change of id waits: it must not reopen what is being removed
	d := s.docs[id]
	delete(s.docs, id)
	if d == nil {
		return os.RemoveAll(s.idDir(id))
	}
	return d.close(true)
}

// close closes every integration's segments.
func (s *docDir[S]) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for id, d := range s.docs {
		errs = append(errs, d.close(false))
		delete(s.docs, id)
	}
	return errors.Join(errs...)
}

// idDir is the directory of id's segments.
func (s *docDir[S]) idDir(id string) string { return filepath.Join(s.dir, escapeID(id)+s.suffix) }

// escapeID makes an integration id a file name: bytes other than [a-z0-9-]
// are escaped as _XX, so any id names exactly one file inside the
// directory.
func escapeID(id string) string {
	var b strings.Builder
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "_%02X", c)
	}
	return b.String()
}

// unescapeID reverses escapeID.
func unescapeID(name string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-':
			b.WriteByte(c)
		case c == '_' && i+2 < len(name):
			v, err := strconv.ParseUint(name[i+1:i+3], 16, 8)
			if err != nil {
				return "", false
			}
			b.WriteByte(byte(v))
			i += 2
		default:
			return "", false
		}
	}
	return b.String(), escapeID(b.String()) == name
}
