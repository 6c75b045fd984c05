package segments

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/sinkbus/sinkbus/internal/atomicfile"
	"github.com/sinkbus/sinkbus/replay"
)

const (
	// indexEvery is the spacing of the sparse index: a reader positioned by
	// it reads at most this much before the record it wants.
	indexEvery = 64 << 10
	// maxSealedIndexes bounds the sealed segments of a topic whose index
	// stays in memory.
	maxSealedIndexes = 16
	// readHints remembers where recent reads stopped, so a reader that comes
	// back for the next records starts there without the index.
	readHints = 16
	// preallocStep is how far ahead of its records the segment being
	// written is filled with zeros. An fsync then finds only data blocks
	// to flush, no file size or block allocation to journal: on ext4 that
	// halves the CPU an fsync costs a group of eight 1 KiB records (36 →
	// 18 µs per record). Write-ahead logs preallocate for the same reason.
	preallocStep = 1 << 20
)

// zeros fills the preallocated part of a segment.
var zeros [64 << 10]byte

type indexEntry struct {
	off   uint64
	pos   int64
	nanos int64
}

// segment is one file of a topic. base and path never change; onDisk belongs
// to whoever holds the topic's write turn (topicLog.syncing); everything else
// is guarded by topicLog.mu.
type segment struct {
	base   uint64
	path   string
	scanMu sync.Mutex // one index build at a time
	onDisk bool

	size                int64  // bytes of readable records
	end                 int64  // bytes assigned, including those not written yet
	nextOff             uint64 // offset the next record of this segment would take
	born                int64  // time of its first record: the age limit counts from it
	count               int
	hasRecords          bool
	firstTime, lastTime int64
	lastOff             uint64
	summarized          bool // count, lastOff and lastTime are exact
	indexed             bool
	index               []indexEntry
	lastUse             uint64
	removed             bool
	corruptLogged       bool
}

// segSummary is what reading a segment from its start learns.
type segSummary struct {
	valid               int64 // bytes of good records
	count               int
	lastOff             uint64
	firstTime, lastTime int64
	index               []indexEntry
	err                 error // why reading stopped before size, if it did
}

func scanSegment(path string, base uint64, size int64) (segSummary, error) {
	f, err := os.Open(path)
	if err != nil {
		return segSummary{}, err
	}
	defer f.Close()
	var sum segSummary
	sc := newFrameScanner(f, 0, size, nil)
	want := base
	for {
		body, at, err := sc.next()
		if errors.Is(err, io.EOF) {
			sum.valid = at
			return sum, nil
		}
		if err == nil && bodyOffset(body) != want {
			err = fmt.Errorf("%w: offset %d where %d was expected", errCorrupt, bodyOffset(body), want)
		}
		if errors.Is(err, errTorn) || errors.Is(err, errCorrupt) {
			sum.valid, sum.err = at, err
			return sum, nil
		}
		if err != nil {
			return sum, err
		}
		nanos := bodyNanos(body)
		if sum.count == 0 {
			sum.firstTime = nanos
		}
		if n := len(sum.index); n == 0 || at-sum.index[n-1].pos >= indexEvery {
			sum.index = append(sum.index, indexEntry{off: want, pos: at, nanos: nanos})
		}
		sum.count++
		sum.lastOff, sum.lastTime = want, nanos
		want++
	}
}

func (seg *segment) apply(sum segSummary) {
	cut := seg.size - sum.valid
	seg.size = sum.valid
	seg.end -= cut
	seg.count = sum.count
	seg.hasRecords = sum.count > 0
	seg.firstTime, seg.lastTime, seg.lastOff = sum.firstTime, sum.lastTime, sum.lastOff
	if sum.count > 0 {
		seg.born = sum.firstTime
	}
	seg.nextOff = seg.base + uint64(sum.count)
	seg.index, seg.indexed, seg.summarized = sum.index, true, true
}

// chunk is a run of encoded records of one segment, written with one write
// call. Once written it is immutable and may join the tail cache.
type chunk struct {
	seg                 *segment
	data                []byte
	first, last         uint64
	firstTime, lastTime int64
	count               int
}

type readHint struct {
	seg *segment
	off uint64
	pos int64
}

// topicLog is one topic's log. Appends encode under mu into pending chunks;
// whoever finds no write under way (syncing false) takes every pending
// chunk, writes and syncs them without the lock, and publishes them for all.
type topicLog struct {
	s    *Storage
	name string
	dir  string
	log  watermill.LoggerAdapter

	mu       sync.Mutex
	cond     sync.Cond
	segs     []*segment
	next     uint64 // next offset to assign
	lastTime int64  // time of the last record assigned
	visible  uint64 // one past the last readable record
	floor    uint64 // records below it are trimmed, whether their segment is gone or not
	pending  []*chunk
	syncing  bool
	closed   bool
	err      error
	cache    tailCache
	hints    [readHints]readHint
	hintAt   int
	useClock uint64
	chunkCap int // initial capacity of a new chunk

	// Group commit: the appends with records pending, and in the group last
	// written; the callers a sync wakes are the ones the next group awaits.
	pendingCallers, lastCallers int
	gatherWant                  int           // callers the leader gathers for; 0 when it does not
	gathered                    chan struct{} // the group is complete
	gatherTimer                 *time.Timer
	dataSyncs                   atomic.Uint64 // fsyncs of record data, for tests

	floorFile string // the trim marker on disk; owned by Trim (Storage.trimMu)

	// Owned by whoever set syncing.
	dirReady bool
	wseg     *segment
	wfile    *os.File
	wpos     int64         // where wseg's next record goes
	walloc   int64         // wseg's file size: records, then zeros up to here
	unsynced int           // records written since the last fsync
	syncTook time.Duration // how long a data fsync takes, a moving average (tookSync)
}

func (t *topicLog) append(recs []*replay.Record, now func() time.Time) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return ErrClosed
	}
	if t.err != nil {
		return t.err
	}
	nanos := now().UnixNano()
	if nanos < t.lastTime {
		nanos = t.lastTime
	}
	t.lastTime = nanos
	at := time.Unix(0, nanos).UTC()
	for _, r := range recs {
		seg := t.writable(nanos)
		if seg.end == 0 {
			seg.born = nanos
		}
		c := t.chunkFor(seg)
		pos, before := seg.end, len(c.data)
		c.data = appendFrame(c.data, r, t.next, nanos)
		seg.end += int64(len(c.data) - before)
		if n := len(seg.index); n == 0 || pos-seg.index[n-1].pos >= indexEvery {
			seg.index = append(seg.index, indexEntry{off: t.next, pos: pos, nanos: nanos})
		}
		if c.count == 0 {
			c.first, c.firstTime = t.next, nanos
		}
		c.last, c.lastTime = t.next, nanos
		c.count++
		r.Offset, r.Time = t.next, at
		t.next++
		seg.nextOff = t.next
	}
	if len(recs) > 0 {
		t.pendingCallers++
		if t.gatherWant > 0 && t.pendingCallers >= t.gatherWant {
			select {
			case t.gathered <- struct{}{}:
			default:
			}
		}
	}
	mine := t.next
	for t.visible < mine {
		switch {
		case t.err != nil:
			return t.err
		case t.closed:
			return ErrClosed
		case !t.syncing:
			t.lead()
		default:
			t.cond.Wait()
		}
	}
	return nil
}

// writable returns the segment a record appended at nanos goes to, starting
// a new one when the current is full, too old, or the offsets jumped.
func (t *topicLog) writable(nanos int64) *segment {
	if n := len(t.segs); n > 0 {
		seg := t.segs[n-1]
		if seg.nextOff == t.next && (seg.end == 0 || seg.end < t.s.cfg.SegmentBytes && !t.s.tooOld(seg, nanos)) {
			return seg
		}
		t.useClock++
		seg.lastUse = t.useClock
	}
	seg := &segment{
		base: t.next, nextOff: t.next, path: filepath.Join(t.dir, segmentName(t.next)),
		summarized: true, indexed: true,
	}
	t.segs = append(t.segs, seg)
	t.evictIndexes()
	return seg
}

func (t *topicLog) chunkFor(seg *segment) *chunk {
	if n := len(t.pending); n > 0 && t.pending[n-1].seg == seg {
		return t.pending[n-1]
	}
	c := &chunk{seg: seg, data: make([]byte, 0, t.chunkCap)}
	t.pending = append(t.pending, c)
	return c
}

// lead writes every pending chunk for everyone. Called with mu held; releases
// it during the I/O.
func (t *topicLog) lead() {
	t.syncing = true
	// The callers the previous sync woke come back with their next records
	// within microseconds: wait for them to join the callers waiting here
	// already (this one among them), so that one fsync covers them all,
	// for as long as they keep coming.
	want := t.pendingCallers + t.lastCallers - 1
	if t.s.cfg.Sync == SyncGroupCommit && t.pendingCallers < want {
		t.gather(want)
	}
	chunks := t.pending
	t.pending = nil
	t.lastCallers, t.pendingCallers = t.pendingCallers, 0
	if n := len(chunks); n > 0 {
		// The next group is likely the size of this one: allocate once.
		t.chunkCap = min(max(len(chunks[n-1].data)+len(chunks[n-1].data)/4, 256), 1<<20)
	}
	t.mu.Unlock()
	err := t.write(chunks)
	t.mu.Lock()
	t.syncing = false
	if err != nil {
		if t.err == nil {
			t.err = fmt.Errorf("sinkbus: journal topic %q: %w", t.name, err)
			t.log.Error("Journal cannot write; the topic refuses appends until the journal is reopened", err, nil)
		}
	} else {
		for _, c := range chunks {
			t.publish(c)
		}
	}
	t.cond.Broadcast()
}

// Bounds of the wait for a group to gather. They scale with the time an
// fsync takes here: a caller that is not coming back then costs the group
// at most about one more fsync, and a caller that is coming back saves one.
// Fixed bounds fit one machine only: 50 µs between callers, enough where
// they come back within microseconds, cut groups short where the CPU is
// slower (a virtual machine with costly wake-ups: a sixth more fsyncs, and
// a third more CPU above the memory journal's per durable event, than with
// the gap one fsync long).
const (
	minGatherGap, maxGatherGap     = 50 * time.Microsecond, time.Millisecond
	minGatherTotal, maxGatherTotal = 300 * time.Microsecond, 2 * time.Millisecond
)

// gatherBounds are how long a gathering leader waits for the next caller
// (gap) and in all (total), for fsyncs that take about syncTook.
func gatherBounds(syncTook time.Duration) (gap, total time.Duration) {
	return min(max(syncTook, minGatherGap), maxGatherGap),
		min(max(2*syncTook, minGatherTotal), maxGatherTotal)
}

// tookSync adds the duration of a data fsync to syncTook, a moving average
// over about the last eight.
func (t *topicLog) tookSync(d time.Duration) {
	if t.syncTook == 0 {
		t.syncTook = d
		return
	}
	t.syncTook += (d - t.syncTook) / 8
}

// gather waits, mu released, until want callers have records pending, no
// caller joined for a gap, or the total passed (gatherBounds). Called with
// mu held. Only the caller that completes the group wakes the leader: a
// wake per caller joining cost a group of eight seven goroutine wake-ups.
// The gaps are checked when the timer fires instead.
func (t *topicLog) gather(want int) {
	gap, total := gatherBounds(t.syncTook)
	if t.gathered == nil {
		t.gathered = make(chan struct{}, 1)
		t.gatherTimer = time.NewTimer(gap)
	}
	t.gatherWant = want
	deadline := time.Now().Add(total)
	for t.pendingCallers < want && !t.closed {
		before := t.pendingCallers
		t.mu.Unlock()
		t.gatherTimer.Reset(min(gap, time.Until(deadline)))
		complete := false
		select {
		case <-t.gathered:
			complete = true
		case <-t.gatherTimer.C:
		}
		t.gatherTimer.Stop()
		t.mu.Lock()
		if complete || t.pendingCallers == before || time.Now().After(deadline) {
			break
		}
	}
	t.gatherWant = 0
	select { // a completion that came with the timer
	case <-t.gathered:
	default:
	}
}

func (t *topicLog) write(chunks []*chunk) error {
	for _, c := range chunks {
		if t.wseg != c.seg {
			if err := t.closeWriter(); err != nil {
				return err
			}
			if err := t.openWriter(c.seg); err != nil {
				return err
			}
		}
		if err := t.preallocate(t.wpos + int64(len(c.data))); err != nil {
			return err
		}
		if _, err := t.wfile.WriteAt(c.data, t.wpos); err != nil {
			return err
		}
		t.wpos += int64(len(c.data))
		t.unsynced += c.count
	}
	if t.s.cfg.Sync == SyncGroupCommit && t.unsynced > 0 {
		start := time.Now()
		if err := t.wfile.Sync(); err != nil {
			return err
		}
		took := time.Since(start)
		t.tookSync(took)
		t.dataSyncs.Add(1)
		t.synced(took)
	}
	return nil
}

// synced tells OnSync that an fsync which took took made the records
// written since the last one durable. Called by whoever set syncing.
func (t *topicLog) synced(took time.Duration) {
	if on := t.s.cfg.OnSync; on != nil && t.unsynced > 0 {
		on(Synced{Topic: t.name, Records: t.unsynced, Took: took})
	}
	t.unsynced = 0
}

// preallocate fills the file being written with zeros up to need at least,
// preallocStep ahead but not past SegmentBytes: the next fsync persists
// the new size with the records, and those after it find the blocks there.
func (t *topicLog) preallocate(need int64) error {
	if need <= t.walloc {
		return nil
	}
	grow := max(need, min(t.walloc+preallocStep, t.s.cfg.SegmentBytes))
	for at := t.walloc; at < grow; {
		n, err := t.wfile.WriteAt(zeros[:min(int64(len(zeros)), grow-at)], at)
		if err != nil {
			return err
		}
		at += int64(n)
	}
	t.walloc = grow
	return nil
}

// closeWriter cuts the zeros past the records off, syncs and closes the
// file being written. A sealed segment is always synced before the next one
// is created, so after a crash only the newest segment can have a torn tail,
// or zeros past its records.
func (t *topicLog) closeWriter() error {
	if t.wfile == nil {
		return nil
	}
	var err error
	if t.walloc > t.wpos {
		err = t.wfile.Truncate(t.wpos)
	}
	start := time.Now()
	if serr := t.wfile.Sync(); err == nil {
		err = serr
	}
	if err == nil {
		t.synced(time.Since(start))
	}
	if cerr := t.wfile.Close(); err == nil {
		err = cerr
	}
	t.wfile, t.wseg, t.unsynced, t.wpos, t.walloc = nil, nil, 0, 0, 0
	return err
}

func (t *topicLog) openWriter(seg *segment) error {
	if !t.dirReady {
		if err := os.Mkdir(t.dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		if hashedTopicDir(filepath.Base(t.dir)) {
			if err := writeFileSync(filepath.Join(t.dir, topicNameFile), []byte(t.name)); err != nil {
				return err
			}
		}
		if err := atomicfile.SyncDir(t.s.cfg.Dir); err != nil {
			return err
		}
		t.dirReady = true
	}
	flag := os.O_WRONLY
	if !seg.onDisk {
		flag |= os.O_CREATE | os.O_EXCL
	}
	f, err := os.OpenFile(seg.path, flag, 0o644)
	if err != nil {
		return err
	}
	// Recovery cut the file to its records, which go on at its end.
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	t.wpos, t.walloc = info.Size(), info.Size()
	if !seg.onDisk {
		if err := atomicfile.SyncDir(t.dir); err != nil {
			f.Close()
			return err
		}
		seg.onDisk = true
	}
	t.wfile, t.wseg = f, seg
	return nil
}

func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// publish makes a written chunk readable. Called with mu held.
func (t *topicLog) publish(c *chunk) {
	seg := c.seg
	seg.size += int64(len(c.data))
	if !seg.hasRecords {
		seg.hasRecords, seg.firstTime = true, c.firstTime
	}
	seg.count += c.count
	seg.lastOff, seg.lastTime = c.last, c.lastTime
	t.visible = c.last + 1
	t.cache.add(c)
}

// syncNow is the periodic fsync of SyncInterval.
func (t *topicLog) syncNow() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.syncing || t.closed || t.unsynced == 0 || t.wfile == nil {
		return
	}
	t.syncing = true
	f := t.wfile
	t.mu.Unlock()
	start := time.Now()
	err := f.Sync()
	if err == nil {
		t.synced(time.Since(start))
	}
	t.mu.Lock()
	t.syncing = false
	if err != nil && t.err == nil {
		t.err = fmt.Errorf("sinkbus: journal topic %q: %w", t.name, err)
		t.log.Error("Journal cannot sync; the topic refuses appends until the journal is reopened", err, nil)
	}
	t.cond.Broadcast()
}

// close writes what is pending, then syncs and closes the file.
func (t *topicLog) close() error {
	t.mu.Lock()
	for {
		if t.syncing {
			t.cond.Wait()
			continue
		}
		if len(t.pending) > 0 && t.err == nil {
			t.lead()
			continue
		}
		break
	}
	t.closed = true
	t.syncing = true // the write turn is never given back
	t.cond.Broadcast()
	t.mu.Unlock()
	return t.closeWriter()
}

// firstLocked returns the first retained offset, or visible when the topic
// holds no record.
func (t *topicLog) firstLocked() uint64 {
	first := t.visible
	for _, seg := range t.segs {
		if seg.hasRecords {
			first = seg.base
			break
		}
	}
	return min(max(first, t.floor), t.visible)
}

func (t *topicLog) read(from uint64, n int) ([]replay.Record, error) {
	var out []replay.Record
	for len(out) < n {
		t.mu.Lock()
		from = max(from, t.firstLocked())
		if from >= t.visible || len(t.segs) == 0 {
			t.mu.Unlock()
			break
		}
		if chunks := t.cache.from(from, n-len(out)); len(chunks) > 0 {
			t.mu.Unlock()
			return decodeChunks(out, chunks, from, n)
		}
		i := sort.Search(len(t.segs), func(i int) bool { return t.segs[i].base > from })
		seg := t.segs[max(i-1, 0)]
		t.mu.Unlock()

		recs, readTo, err := t.readSegment(seg, from, n-len(out))
		out = append(out, recs...)
		if err != nil || readTo < 0 {
			return out, err
		}
		if k := len(recs); k > 0 {
			from = recs[k-1].Offset + 1
		}
		if hook := t.s.afterSegmentRead; hook != nil {
			hook()
		}
		t.mu.Lock()
		succ := t.successor(seg)
		// Records are assigned to a segment before they are written: one
		// already followed by the next may still have its last records
		// published after this read took its size (the next segment's
		// come after them). Go on to the next segment only once this read
		// has covered every byte assigned to seg (or seg is gone); else
		// read seg again from where this read stopped.
		whole := seg.removed || readTo >= seg.end
		t.mu.Unlock()
		if succ == nil {
			break
		}
		if whole {
			from = max(from, succ.base)
		}
	}
	return out, nil
}

func (t *topicLog) successor(seg *segment) *segment {
	i := sort.Search(len(t.segs), func(i int) bool { return t.segs[i].base > seg.base })
	if i == len(t.segs) {
		return nil
	}
	return t.segs[i]
}

var scanBuffers = sync.Pool{New: func() any { b := make([]byte, scanBuffer); return &b }}

// nothingMore is how far a read got in a segment deleted under it: there
// is nothing more to read.
const nothingMore = math.MaxInt64

// readSegment reads up to n records of seg from offset from on. readTo is the
// position in seg up to which it read everything seg held when it looked
// (nothingMore for a segment deleted meanwhile), or -1 when it stopped at n records
// or an error.
func (t *topicLog) readSegment(seg *segment, from uint64, n int) (recs []replay.Record, readTo int64, err error) {
	pos, size, err := t.locate(seg, from)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nothingMore, nil // trimmed meanwhile
	}
	if err != nil {
		return nil, -1, err
	}
	f, err := os.Open(seg.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nothingMore, nil
	}
	if err != nil {
		return nil, -1, err
	}
	defer f.Close()
	bp := scanBuffers.Get().(*[]byte)
	sc := newFrameScanner(f, pos, size, *bp)
	defer func() {
		if cap(sc.buf) <= 4*scanBuffer {
			*bp = sc.buf
			scanBuffers.Put(bp)
		}
	}()
	for len(recs) < n {
		body, at, err := sc.next()
		if errors.Is(err, io.EOF) {
			return recs, at, nil
		}
		if err == nil && bodyOffset(body) < from {
			continue
		}
		var rec replay.Record
		if err == nil {
			rec, err = decodeBody(body)
		}
		if errors.Is(err, errTorn) || errors.Is(err, errCorrupt) {
			t.corrupt(seg, at, err) // a sealed segment now ends at at
			return recs, at, nil
		}
		if err != nil {
			return recs, -1, err
		}
		recs = append(recs, rec)
	}
	t.mu.Lock()
	t.hints[t.hintAt] = readHint{seg: seg, off: recs[len(recs)-1].Offset + 1, pos: sc.pos}
	t.hintAt = (t.hintAt + 1) % readHints
	t.mu.Unlock()
	return recs, -1, nil
}

// locate returns where to start reading seg for offset from, and how far
// seg may be read.
func (t *topicLog) locate(seg *segment, from uint64) (pos, size int64, err error) {
	t.mu.Lock()
	for _, h := range t.hints {
		if h.seg == seg && h.off == from {
			size := seg.size // publish writes it under mu
			t.mu.Unlock()
			return h.pos, size, nil
		}
	}
	t.mu.Unlock()
	if err := t.ensureIndex(seg); err != nil {
		return 0, 0, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.useClock++
	seg.lastUse = t.useClock
	i := sort.Search(len(seg.index), func(i int) bool { return seg.index[i].off > from }) - 1
	if i >= 0 {
		pos = seg.index[i].pos
	}
	return pos, seg.size, nil
}

// ensureIndex reads seg to build its index when it has none (a segment
// recovered lazily, or whose index was evicted).
func (t *topicLog) ensureIndex(seg *segment) error {
	t.mu.Lock()
	indexed := seg.indexed
	t.mu.Unlock()
	if indexed {
		return nil
	}
	seg.scanMu.Lock()
	defer seg.scanMu.Unlock()
	t.mu.Lock()
	indexed, size := seg.indexed, seg.size
	t.mu.Unlock()
	if indexed {
		return nil
	}
	sum, err := scanSegment(seg.path, seg.base, size)
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if seg.removed {
		return nil
	}
	if sum.err != nil && !seg.corruptLogged {
		seg.corruptLogged = true
		t.s.damaged(Damage{File: seg.path, Bytes: size - sum.valid, Err: sum.err},
			"Journal segment is corrupt; the records after this point are skipped",
			watermill.LogFields{"topic": t.name, "file": seg.path, "at": sum.valid, "bytes_skipped": size - sum.valid})
	}
	seg.apply(sum)
	t.useClock++
	seg.lastUse = t.useClock
	t.evictIndexes()
	return nil
}

// corrupt records a bad frame found while reading seg at position at: a
// sealed segment ends there from now on. The segment being written keeps its
// size (appends continue after it); reads stop at the bad frame until it is
// sealed.
func (t *topicLog) corrupt(seg *segment, at int64, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if seg.removed || at >= seg.size {
		return
	}
	if !seg.corruptLogged {
		seg.corruptLogged = true
		t.s.damaged(Damage{File: seg.path, Bytes: seg.size - at, Err: err},
			"Journal segment is corrupt; the records after this point are skipped",
			watermill.LogFields{"topic": t.name, "file": seg.path, "at": at, "bytes_skipped": seg.size - at})
	}
	if seg == t.segs[len(t.segs)-1] {
		return
	}
	cut := seg.size - at
	seg.size -= cut
	seg.end -= cut
}

// evictIndexes drops the least recently used indexes of sealed segments
// beyond maxSealedIndexes. Called with mu held.
func (t *topicLog) evictIndexes() {
	if len(t.segs) < 2 {
		return
	}
	sealed := t.segs[:len(t.segs)-1]
	evictable := func(seg *segment) bool { return seg.indexed && len(seg.index) > 0 && seg.size == seg.end }
	n := 0
	for _, seg := range sealed {
		if evictable(seg) {
			n++
		}
	}
	for ; n > maxSealedIndexes; n-- {
		var lru *segment
		for _, seg := range sealed {
			if evictable(seg) && (lru == nil || seg.lastUse < lru.lastUse) {
				lru = seg
			}
		}
		lru.index, lru.indexed = nil, false
	}
}

// seek returns the first retained record at or after at.
func (t *topicLog) seek(at int64) (uint64, error) {
	off, err := t.seekAny(at)
	if err != nil {
		return 0, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return max(off, t.firstLocked()), nil
}

// seekAny is seek that may land on a record trimmed but still on disk.
func (t *topicLog) seekAny(at int64) (uint64, error) {
	for {
		t.mu.Lock()
		var seg *segment
		for i := len(t.segs) - 1; i >= 0; i-- {
			if s := t.segs[i]; s.hasRecords && s.firstTime < at {
				seg = s
				break
			}
		}
		if seg == nil {
			first := t.firstLocked()
			t.mu.Unlock()
			return first, nil
		}
		t.mu.Unlock()
		off, found, seen, err := t.seekIn(seg, at)
		if err != nil || found {
			return off, err
		}
		if hook := t.s.afterSegmentRead; hook != nil {
			hook()
		}
		t.mu.Lock()
		if seen.size >= 0 && seg.size > seen.size {
			// seg has grown since seekIn looked, so no later segment had
			// records then: the answer is the end of what was visible.
			// (Following the appends instead could chase them forever.)
			t.mu.Unlock()
			return seen.visible, nil
		}
		next := t.successor(seg)
		for next != nil && !next.hasRecords {
			next = t.successor(next)
		}
		switch {
		case next == nil:
			off = t.visible
		case next.firstTime >= at:
			off = next.base
		default:
			// Appends filled a later segment since the search began, and
			// it starts before at: search that one.
			t.mu.Unlock()
			continue
		}
		t.mu.Unlock()
		return off, nil
	}
}

// seekView is what seekIn saw: seg's size and the topic's visible bound
// when it looked, or a size of -1 when seg is gone or damaged where it read.
type seekView struct {
	size    int64
	visible uint64
}

// seekIn returns the first record of seg at or after at, if seg had one
// when it looked.
func (t *topicLog) seekIn(seg *segment, at int64) (off uint64, found bool, seen seekView, err error) {
	unreadable := seekView{size: -1}
	if err := t.ensureIndex(seg); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, false, unreadable, nil
		}
		return 0, false, unreadable, err
	}
	t.mu.Lock()
	t.useClock++
	seg.lastUse = t.useClock
	i := sort.Search(len(seg.index), func(i int) bool { return seg.index[i].nanos >= at }) - 1
	pos := int64(0)
	if i >= 0 {
		pos = seg.index[i].pos
	}
	seen = seekView{size: seg.size, visible: t.visible}
	t.mu.Unlock()
	f, err := os.Open(seg.path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, unreadable, nil
	}
	if err != nil {
		return 0, false, unreadable, err
	}
	defer f.Close()
	sc := newFrameScanner(f, pos, seen.size, nil)
	for {
		body, _, err := sc.next()
		switch {
		case errors.Is(err, io.EOF):
			return 0, false, seen, nil
		case errors.Is(err, errTorn) || errors.Is(err, errCorrupt):
			return 0, false, unreadable, nil
		case err != nil:
			return 0, false, unreadable, err
		case bodyNanos(body) >= at:
			return bodyOffset(body), true, seen, nil
		}
	}
}

// trim hides the topic's records older than before and removes the sealed
// segments that hold nothing else. The new floor is saved first (a marker
// file: a crash cannot bring hidden records back), then taken under the
// lock; seeking the floor and deleting files happen without it, so appends
// wait for no I/O. Called under Storage.trimMu.
func (t *topicLog) trim(before int64) (int, error) {
	floor, err := t.seek(before)
	if err != nil {
		return 0, err
	}
	t.mu.Lock()
	first := t.firstLocked()
	t.mu.Unlock()
	var saveErr error
	if floor > first {
		// Records are visible, so their directory exists. Should the
		// marker fail, they are hidden all the same until a reopen.
		saveErr = t.saveFloor(floor)
	}

	var doomed []*segment
	removed := 0
	t.mu.Lock()
	if floor > first {
		removed = int(floor - first) // exact but for records lost to corruption
		t.floor = floor
	}
	// Also when the floor stays: a segment it covered may have been sealed
	// since, or the floor come from the marker at open.
	// A segment spans the offsets up to its successor's base.
	for len(t.segs) > 1 && t.segs[1].base <= t.floor && t.segs[0].size == t.segs[0].end {
		seg := t.segs[0]
		seg.removed = true
		doomed = append(doomed, seg)
		t.segs[0] = nil
		t.segs = t.segs[1:]
	}
	for i := range t.hints {
		if h := t.hints[i].seg; h != nil && h.removed {
			t.hints[i] = readHint{}
		}
	}
	t.cache.dropBelow(t.floor)
	t.mu.Unlock()
	for _, seg := range doomed {
		if err := os.Remove(seg.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.log.Error("Cannot remove a trimmed journal segment", err, watermill.LogFields{"file": seg.path})
		}
	}
	return removed, saveErr
}

// saveFloor records durably that the records below floor are trimmed, then
// removes the previous marker (load keeps the highest should both remain).
func (t *topicLog) saveFloor(floor uint64) error {
	path := filepath.Join(t.dir, floorName(floor))
	if err := writeFileSync(path, nil); err != nil {
		return fmt.Errorf("sinkbus: journal topic %q: save trim floor: %w", t.name, err)
	}
	if err := atomicfile.SyncDir(t.dir); err != nil {
		return fmt.Errorf("sinkbus: journal topic %q: save trim floor: %w", t.name, err)
	}
	if old := t.floorFile; old != "" && old != path {
		if err := os.Remove(old); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.log.Error("Cannot remove an old journal trim marker", err, watermill.LogFields{"file": old})
		}
	}
	t.floorFile = path
	return nil
}

// tailCache keeps the newest written chunks of a topic, up to limit bytes.
type tailCache struct {
	limit  int64
	bytes  int64
	chunks []*chunk
}

func (c *tailCache) add(ch *chunk) {
	if c.limit < 0 {
		return
	}
	c.chunks = append(c.chunks, ch)
	c.bytes += int64(cap(ch.data))
	for c.bytes > c.limit && len(c.chunks) > 0 {
		c.bytes -= int64(cap(c.chunks[0].data))
		c.chunks[0] = nil
		c.chunks = c.chunks[1:]
	}
}

// dropBelow forgets the chunks that hold only offsets below off.
func (c *tailCache) dropBelow(off uint64) {
	for len(c.chunks) > 0 && c.chunks[0].last < off {
		c.bytes -= int64(cap(c.chunks[0].data))
		c.chunks[0] = nil
		c.chunks = c.chunks[1:]
	}
}

// from returns a copy of the chunks holding offset off onwards, enough for n
// records, or nil when off is not cached.
func (c *tailCache) from(off uint64, n int) []*chunk {
	if len(c.chunks) == 0 || off < c.chunks[0].first {
		return nil
	}
	i := sort.Search(len(c.chunks), func(i int) bool { return c.chunks[i].last >= off })
	var out []*chunk
	for ; i < len(c.chunks) && n > 0; i++ {
		ch := c.chunks[i]
		out = append(out, ch)
		n -= int(ch.last + 1 - max(off, ch.first))
	}
	return out
}

// decodeChunks appends to out the records of chunks from offset from on, up
// to n in all. The chunks were encoded here: no checksum to verify.
func decodeChunks(out []replay.Record, chunks []*chunk, from uint64, n int) ([]replay.Record, error) {
	for _, c := range chunks {
		for b := c.data; len(b) > 0 && len(out) < n; {
			l := frameHeader + int(binary.LittleEndian.Uint32(b))
			body := b[frameHeader:l]
			b = b[l:]
			if bodyOffset(body) < from {
				continue
			}
			rec, err := decodeBody(body)
			if err != nil {
				return out, err
			}
			out = append(out, rec)
		}
	}
	return out, nil
}
