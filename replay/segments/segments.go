// Package segments is the journal's embedded, durable storage engine: a
// replay.Storage that keeps each topic as a log of segment files in one
// directory, with group commit (concurrent appends share one fsync, see
// SyncPolicy), crash recovery and retention by file deletion. The bus uses
// it for its DataDir; other engines live beside it under replay/.
//
// Storage keeps the journal in a directory:
//
//	<dir>/cursors.json                        consumer cursors, replaced atomically
//	<dir>/<topic>/<first offset, 20 digits>.seg
//	<dir>/<topic>/<first retained offset>.trimmed   empty; records below it are trimmed
//
// <topic> is the topic escaped into a safe name (see escapeTopic). A topic's
// records go to its newest segment; past SegmentBytes, or once its first
// record is MaxSegmentAge old, the next record starts a new one. Each record
// is one frame, little-endian:
//
//	u32     length of the body
//	u32     CRC32C (Castagnoli) of the body
//	body:
//	u64     offset
//	i64     time, Unix nanoseconds
//	uvarint length, then the UUID
//	uvarint number of metadata pairs, then per pair:
//	        uvarint length, key, uvarint length, value
//	        the payload: the rest of the body
//
// Offsets inside a segment are dense, starting at the number in its name.
//
// Recovery. On open the newest segment of each topic is read in full: at the
// first frame that is cut short or fails its checksum the file is truncated
// and the cut is logged (file and bytes). Only an append that never returned
// can be there, so no acknowledged record is lost. Zeros alone past the last
// record are cut without a word: the segment being written is filled with
// zeros ahead of its records (up to 1 MiB), so that a group commit's fsync
// has no file size to persist, and a sealed segment is cut to its records.
// Older segments are read lazily; a bad frame in one of them ends that
// segment at that point: the records after it are skipped (and logged), the
// file is left untouched for inspection.
//
// Retention. Trim moves a topic's floor (saved as the .trimmed marker) to the
// first record at or after the cut: the records below are gone for Read,
// Seek and Bounds at once. Sealed segments wholly below the floor are
// deleted; the segment being written is deleted after it is sealed.
//
// Memory. Besides the tail cache, each topic keeps a summary per segment
// (first and last offset and time: a few words) and a sparse index (one entry
// per 64 KiB of records) for the active segment and at most 16 sealed ones;
// an index evicted is rebuilt by reading its segment when needed.
package segments

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/sinkbus/sinkbus/field"
	"github.com/sinkbus/sinkbus/internal/atomicfile"
	"github.com/sinkbus/sinkbus/internal/dirlock"
	"github.com/sinkbus/sinkbus/replay"
)

// ErrClosed is returned by a Storage after Close.
var ErrClosed = errors.New("sinkbus: journal storage closed")

// ErrDirLocked is matched by the error of Open when another
// process (or another Segments of this one) holds the directory; the error
// names the directory and, where it can be known, the holder's pid.
var ErrDirLocked = errors.New("sinkbus: journal directory locked by another process")

// ErrRecordTooLarge is returned by Append for a record whose encoding exceeds
// 256 MiB.
var ErrRecordTooLarge = errors.New("sinkbus: journal record too large")

// SyncPolicy says when a Storage forces appended records to stable storage.
type SyncPolicy int

const (
	// SyncGroupCommit: Append returns after an fsync covering its records.
	// Concurrent appends to a topic share one write and one fsync. Nothing
	// acknowledged is lost, even by a power cut.
	SyncGroupCommit SyncPolicy = iota
	// SyncInterval: Append returns once its records are written to the
	// operating system; a background fsync runs every SyncEvery. A process
	// crash loses nothing; a power cut or kernel crash loses at most the last
	// SyncEvery of acknowledged records.
	SyncInterval
	// SyncNone: Append returns once written; the operating system decides
	// when the data reaches the disk (Close still syncs). A process crash
	// loses nothing; a power cut may lose much.
	SyncNone
)

var syncNames = [...]string{"group_commit", "interval", "none"}

// String returns "group_commit", "interval" or "none".
func (p SyncPolicy) String() string {
	if p >= 0 && int(p) < len(syncNames) {
		return syncNames[p]
	}
	return fmt.Sprintf("SyncPolicy(%d)", int(p))
}

// MarshalText writes the name String returns.
func (p SyncPolicy) MarshalText() ([]byte, error) {
	if p < 0 || int(p) >= len(syncNames) {
		return nil, fmt.Errorf("sinkbus: unknown sync policy %d", int(p))
	}
	return []byte(p.String()), nil
}

// UnmarshalText reads "group_commit", "interval" or "none".
func (p *SyncPolicy) UnmarshalText(b []byte) error {
	for i, n := range syncNames {
		if string(b) == n {
			*p = SyncPolicy(i)
			return nil
		}
	}
	return field.New("sync", "must be one of group_commit, interval, none")
}

// Defaults of Config.
const (
	DefaultSegmentBytes   = 64 << 20
	DefaultTailCacheBytes = 8 << 20
	DefaultSyncEvery      = 200 * time.Millisecond
)

// Config configures Open.
type Config struct {
	// Dir holds the journal; it is created when missing. Required.
	Dir string `json:"dir"`
	// SegmentBytes is the size past which a topic starts a new segment file.
	// Zero means DefaultSegmentBytes (64 MiB). The segment being written
	// takes up to 1 MiB of zeros more on disk until it is sealed or closed.
	SegmentBytes int64 `json:"segment_bytes"`
	// MaxSegmentAge is the age of its first record past which a segment is
	// sealed at the next append, so that retention can delete it: Trim hides
	// old records at once but frees disk a whole segment at a time. Zero
	// means Retention/10 of the Journal opened on the storage (3 days for
	// the default 30), or no limit without a Journal.
	MaxSegmentAge time.Duration `json:"max_segment_age"`
	// Sync is the durability of Append. The zero value is SyncGroupCommit.
	Sync SyncPolicy `json:"sync"`
	// SyncEvery is the fsync period of SyncInterval. Zero means
	// DefaultSyncEvery (200 ms).
	SyncEvery time.Duration `json:"sync_every"`
	// TailCacheBytes is how many bytes of each topic's newest records stay in
	// memory, so readers that keep up never touch the disk. Zero means
	// DefaultTailCacheBytes (8 MiB); negative disables the cache.
	TailCacheBytes int64 `json:"tail_cache_bytes"`
	// LockWait is how long Open waits for another holder of Dir to
	// let go (a process being replaced in a rolling deploy) before it fails
	// with ErrDirLocked. Zero means it fails at once.
	LockWait time.Duration `json:"lock_wait"`
	// Logger receives recovery and corruption reports. Nil means
	// watermill.NopLogger{}, except for damage (records cut off or
	// skipped, see OnDamage), which is then logged through slog.Default():
	// data lost is never silent.
	Logger watermill.LoggerAdapter `json:"-"`
	// OnDamage is called for each damage the storage finds, after it is
	// logged: for metrics. Nil means no call. It may run with the
	// storage's locks held: it must not call the storage.
	OnDamage func(Damage) `json:"-"`
	// OnSync is called after each fsync that makes records durable (a
	// group commit's, SyncInterval's periodic one, or the one that closes a
	// segment), for metrics: fsync latency bounds Append's under
	// SyncGroupCommit. Nil means no call. It runs on the append path: it
	// must return quickly and must not call the storage.
	OnSync func(Synced) `json:"-"`
}

// Synced is one fsync of records.
type Synced struct {
	Topic string
	// Records is how many records the fsync made durable.
	Records int
	// Took is how long the fsync took.
	Took time.Duration
}

// Damage is data the storage found it could not keep.
type Damage struct {
	// File is the segment file.
	File string
	// Bytes is how many bytes of it are lost.
	Bytes int64
	// Cut is set when those bytes were cut off the file: the tail of the
	// newest segment at open, torn by a crash or corrupt. Otherwise a
	// corrupt frame ends an older segment: the records after it are
	// skipped and the file is left for inspection.
	Cut bool
	// Err says what was wrong with the first byte lost.
	Err error
}

func (c *Config) setDefaults() {
	if c.SegmentBytes == 0 {
		c.SegmentBytes = DefaultSegmentBytes
	}
	if c.SyncEvery == 0 {
		c.SyncEvery = DefaultSyncEvery
	}
	if c.TailCacheBytes == 0 {
		c.TailCacheBytes = DefaultTailCacheBytes
	}
}

// Validate reports every problem of the configuration at once.
func (c Config) Validate() error {
	var p field.Problems
	if c.Dir == "" {
		p.Add("dir", "is required")
	}
	if c.SegmentBytes < 0 {
		p.Add("segment_bytes", "must not be negative")
	}
	if c.MaxSegmentAge < 0 {
		p.Add("max_segment_age", "must not be negative")
	}
	if c.Sync < SyncGroupCommit || c.Sync > SyncNone {
		p.Add("sync", "must be one of group_commit, interval, none")
	}
	if c.SyncEvery < 0 {
		p.Add("sync_every", "must not be negative")
	}
	if c.LockWait < 0 {
		p.Add("lock_wait", "must not be negative")
	}
	return p.Err()
}

// Storage is the embedded, durable replay.Storage: one directory, a log of
// segment files per topic. Safe for concurrent use; one holder at a time
// may open a directory (Open locks it).
type Storage struct {
	cfg    Config
	logger watermill.LoggerAdapter
	alert  watermill.LoggerAdapter // for damage: never a no-op
	lock   *dirlock.Lock

	mu     sync.RWMutex
	topics map[string]*topicLog

	cursorMu sync.Mutex
	cursors  map[replay.CursorKey]replay.Cursor

	maxAge atomic.Int64 // nanoseconds; zero: no age limit

	trimMu sync.Mutex
	closed atomic.Bool
	stop   chan struct{}
	wg     sync.WaitGroup

	// afterSegmentRead, set by tests before any use, runs when a read or a
	// seek has looked through a segment to its end, before it decides
	// where to go on: where appends can slip in between.
	afterSegmentRead func()
}

var _ replay.Storage = (*Storage)(nil)

// Open opens (or creates) the journal in cfg.Dir, repairing the tail of
// each topic left by a crash. It locks the directory: while another process
// holds it, it fails (after cfg.LockWait) with an error matching
// ErrDirLocked.
func Open(cfg Config) (*Storage, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	lock, err := dirlock.Acquire(cfg.Dir, cfg.LockWait)
	if errors.Is(err, dirlock.ErrLocked) {
		return nil, fmt.Errorf("%w: %w", ErrDirLocked, err)
	}
	if err != nil {
		return nil, fmt.Errorf("sinkbus: journal directory: %w", err)
	}
	logger, alert := cfg.Logger, cfg.Logger
	if logger == nil {
		logger, alert = watermill.NopLogger{}, watermill.NewSlogLogger(slog.Default())
	}
	fields := watermill.LogFields{"journal_dir": cfg.Dir}
	s := &Storage{
		cfg:    cfg,
		logger: logger.With(fields),
		alert:  alert.With(fields),
		lock:   lock,
		topics: make(map[string]*topicLog),
		stop:   make(chan struct{}),
	}
	if err := s.open(); err != nil {
		for _, t := range s.topics {
			_ = t.close()
		}
		return nil, errors.Join(err, lock.Release())
	}
	return s, nil
}

// open reads the directory Open has locked.
func (s *Storage) open() error {
	cfg := s.cfg
	atomicfile.RemoveStale(cfg.Dir) // a cursors file a crash left half written
	s.maxAge.Store(int64(cfg.MaxSegmentAge))
	cursors, err := loadCursors(cfg.Dir)
	if err != nil {
		return err
	}
	s.cursors = cursors
	entries, err := os.ReadDir(cfg.Dir)
	if err != nil {
		return fmt.Errorf("sinkbus: journal directory: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		name, ok := s.topicOfDir(e.Name())
		if !ok {
			s.logger.Info("Ignoring a directory that is not a journal topic", watermill.LogFields{"name": e.Name()})
			continue
		}
		t := s.newTopic(name)
		t.dirReady = true
		s.topics[name] = t
		if err := t.load(); err != nil {
			return err
		}
	}
	s.skipAcknowledged()
	if cfg.Sync == SyncInterval {
		s.wg.Add(1)
		go s.syncLoop()
	}
	return nil
}

// damaged logs d, where it will be seen whatever logger was given, and
// tells OnDamage.
func (s *Storage) damaged(d Damage, msg string, fields watermill.LogFields) {
	s.alert.Error(msg, d.Err, fields)
	if s.cfg.OnDamage != nil {
		s.cfg.OnDamage(d)
	}
}

// RetainFor implements replay.Retainer: without a MaxSegmentAge of their
// own, segments are sealed at a tenth of the journal's retention.
func (s *Storage) RetainFor(retention time.Duration) {
	if s.cfg.MaxSegmentAge == 0 && retention > 0 {
		s.maxAge.Store(int64(max(retention/10, time.Nanosecond)))
	}
}

// tooOld reports whether seg is past the age limit for a record at nanos.
func (s *Storage) tooOld(seg *segment, nanos int64) bool {
	age := s.maxAge.Load()
	return age > 0 && seg.end > 0 && nanos-seg.born >= age
}

func (s *Storage) topicOfDir(name string) (string, bool) {
	if !hashedTopicDir(name) {
		return unescapeTopic(name)
	}
	b, err := os.ReadFile(filepath.Join(s.cfg.Dir, name, topicNameFile))
	if err != nil || escapeTopic(string(b)) != name {
		return "", false
	}
	return string(b), true
}

// skipAcknowledged moves a topic's next offset past every saved cursor. A
// cursor beyond the records means records were acknowledged, then lost (a
// power cut with SyncInterval or SyncNone); reusing their offsets would make
// consumers skip the new records.
func (s *Storage) skipAcknowledged() {
	for k, c := range s.cursors {
		t := s.topics[k.Topic]
		if t == nil {
			t = s.newTopic(k.Topic)
			s.topics[k.Topic] = t
		}
		if end := c.End(); end > t.next {
			s.alert.Error("Journal lost records its consumers had acknowledged; offsets continue after them",
				nil, watermill.LogFields{"topic": k.Topic, "group": k.Group, "next": t.next, "cursor": end})
			t.next, t.visible = end, end
		}
	}
}

func (s *Storage) newTopic(name string) *topicLog {
	t := &topicLog{
		s:       s,
		name:    name,
		dir:     filepath.Join(s.cfg.Dir, escapeTopic(name)),
		next:    1,
		visible: 1,
		cache:   tailCache{limit: s.cfg.TailCacheBytes},
		log:     s.logger.With(watermill.LogFields{"topic": name}),
	}
	t.cond.L = &t.mu
	return t
}

func (s *Storage) lookup(topic string) *topicLog {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.topics[topic]
}

func (s *Storage) topicFor(topic string) *topicLog {
	if t := s.lookup(topic); t != nil {
		return t
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.topics[topic]
	if t == nil {
		t = s.newTopic(topic)
		s.topics[topic] = t
	}
	return t
}

func (s *Storage) allTopics() []*topicLog {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*topicLog, 0, len(s.topics))
	for _, t := range s.topics {
		out = append(out, t)
	}
	return out
}

// Append implements replay.Storage. It sets each record's Offset and Time. With
// SyncGroupCommit it returns after the fsync that covers its records.
// Records of one call are contiguous in the topic. After a write or fsync
// error the topic refuses appends until the storage is reopened (recovery
// then decides what reached the disk).
func (s *Storage) Append(topic string, recs []*replay.Record, now func() time.Time) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if len(recs) == 0 {
		return nil
	}
	for _, r := range recs {
		if frameSize(r) < 0 {
			return ErrRecordTooLarge
		}
	}
	if now == nil {
		now = time.Now
	}
	return s.topicFor(topic).append(recs, now)
}

// CheckAppend implements replay.AppendChecker: ErrClosed after Close, the
// write or fsync failure that made topic refuse appends, or nil.
func (s *Storage) CheckAppend(topic string) error {
	if s.closed.Load() {
		return ErrClosed
	}
	t := s.lookup(topic)
	if t == nil {
		return nil // created by the first append
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return ErrClosed
	}
	return t.err
}

var _ replay.AppendChecker = (*Storage)(nil)

// Read implements replay.Storage. Only records whose Append has made them as
// durable as the policy promises are returned. The records share no memory
// with the storage; empty metadata comes back as an empty map, an empty
// payload as nil.
func (s *Storage) Read(topic string, from uint64, max int) ([]replay.Record, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	t := s.lookup(topic)
	if t == nil || max <= 0 {
		return nil, nil
	}
	return t.read(from, max)
}

// Bounds implements replay.Storage. next is one past the last record Read can
// return; records of an Append still waiting for its fsync are not counted.
// Offsets in between may hold no record (trimmed, or lost to corruption):
// Read skips them.
func (s *Storage) Bounds(topic string) (first, next uint64) {
	t := s.lookup(topic)
	if t == nil {
		return 1, 1
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.firstLocked(), t.visible
}

// Seek implements replay.Storage.
func (s *Storage) Seek(topic string, at time.Time) (uint64, error) {
	if s.closed.Load() {
		return 0, ErrClosed
	}
	t := s.lookup(topic)
	if t == nil {
		return 1, nil
	}
	return t.seek(at.UnixNano())
}

// Trim implements replay.Storage. Records older than before are hidden at once
// (Read, Seek and Bounds start after them, also after a reopen: the floor
// is saved in a marker file) and their files deleted a whole segment at a
// time: a sealed segment goes once every record in it is hidden, the
// segment being written stays until it is sealed (SegmentBytes,
// MaxSegmentAge). The count is exact except for records already lost to
// corruption, counted by the offsets they span. Appends wait for none of
// Trim's reads, writes or deletions.
func (s *Storage) Trim(before time.Time) (int, error) {
	if s.closed.Load() {
		return 0, ErrClosed
	}
	s.trimMu.Lock()
	defer s.trimMu.Unlock()
	removed := 0
	var errs []error
	for _, t := range s.allTopics() {
		n, err := t.trim(before.UnixNano())
		removed += n
		errs = append(errs, err)
	}
	return removed, errors.Join(errs...)
}

// Topics implements replay.Storage.
func (s *Storage) Topics() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.topics))
	for n := range s.topics {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Close waits for appends under way, syncs and closes every file. Later
// calls return nil.
func (s *Storage) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(s.stop)
	s.wg.Wait()
	var errs []error
	for _, t := range s.allTopics() {
		errs = append(errs, t.close())
	}
	return errors.Join(append(errs, s.lock.Release())...)
}

func (s *Storage) syncLoop() {
	defer s.wg.Done()
	tick := time.NewTicker(s.cfg.SyncEvery)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
		}
		for _, t := range s.allTopics() {
			t.syncNow()
		}
	}
}

// load reads the topic's segment files; the newest is recovered.
func (t *topicLog) load() error {
	entries, err := os.ReadDir(t.dir)
	if err != nil {
		return fmt.Errorf("sinkbus: journal topic %q: %w", t.name, err)
	}
	for _, e := range entries {
		if floor, ok := parseOffsetName(e.Name(), floorSuffix); ok {
			t.loadFloor(floor, filepath.Join(t.dir, e.Name()))
			continue
		}
		base, ok := parseSegmentName(e.Name())
		if !ok || !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return fmt.Errorf("sinkbus: journal topic %q: %w", t.name, err)
		}
		t.segs = append(t.segs, &segment{
			base: base, nextOff: base, path: filepath.Join(t.dir, e.Name()),
			size: info.Size(), end: info.Size(), onDisk: true,
		})
	}
	sort.Slice(t.segs, func(i, j int) bool { return t.segs[i].base < t.segs[j].base })
	// Offsets go on after trimmed records even when no segment is left.
	t.next, t.visible = max(t.next, t.floor), max(t.visible, t.floor)
	if len(t.segs) == 0 {
		return nil
	}
	last := t.segs[len(t.segs)-1]
	for _, seg := range t.segs[:len(t.segs)-1] {
		if err := t.peek(seg); err != nil {
			return err
		}
	}
	if err := t.recover(last); err != nil {
		return err
	}
	t.next = max(last.nextOff, t.floor)
	t.visible = t.next
	// The clamp of Append needs the newest record's time, which may sit in
	// an earlier segment when the newest is empty.
	for i := len(t.segs) - 1; i >= 0; i-- {
		seg := t.segs[i]
		if !seg.hasRecords {
			continue
		}
		if !seg.summarized {
			if err := t.ensureIndex(seg); err != nil {
				return err
			}
		}
		if seg.hasRecords {
			t.lastTime = seg.lastTime
			break
		}
	}
	return nil
}

// loadFloor takes the highest trim marker of the topic and removes the
// others (left by a crash between writing a marker and removing the last).
func (t *topicLog) loadFloor(floor uint64, path string) {
	if floor < t.floor {
		_ = os.Remove(path)
		return
	}
	if t.floorFile != "" {
		_ = os.Remove(t.floorFile)
	}
	t.floor, t.floorFile = floor, path
}

// peek reads the first record of a sealed segment: its time places the
// segment for Seek and Trim without reading the rest.
func (t *topicLog) peek(seg *segment) error {
	f, err := os.Open(seg.path)
	if err != nil {
		return fmt.Errorf("sinkbus: journal segment: %w", err)
	}
	defer f.Close()
	sc := newFrameScanner(f, 0, seg.size, make([]byte, 4<<10))
	body, _, err := sc.next()
	switch {
	case err == nil && bodyOffset(body) == seg.base:
		seg.hasRecords = true
		seg.firstTime = bodyNanos(body)
	case errors.Is(err, io.EOF):
		seg.summarized, seg.indexed = true, true
	case err == nil, errors.Is(err, errTorn), errors.Is(err, errCorrupt):
		t.s.damaged(Damage{File: seg.path, Bytes: seg.size, Err: errCorrupt},
			"Journal segment is unreadable from its first record; skipping it",
			watermill.LogFields{"topic": t.name, "file": seg.path, "bytes_skipped": seg.size})
		seg.size, seg.end = 0, 0
		seg.summarized, seg.indexed = true, true
	default:
		return fmt.Errorf("sinkbus: journal segment %s: %w", seg.path, err)
	}
	return nil
}

// recover reads the newest segment in full and cuts a bad tail off.
func (t *topicLog) recover(seg *segment) error {
	sum, err := scanSegment(seg.path, seg.base, seg.size)
	if err != nil {
		return fmt.Errorf("sinkbus: journal segment %s: %w", seg.path, err)
	}
	if cut := seg.size - sum.valid; cut > 0 {
		preallocated, err := allZeros(seg.path, sum.valid, seg.size)
		if err == nil {
			err = truncateSync(seg.path, sum.valid)
		}
		if err != nil {
			return fmt.Errorf("sinkbus: journal segment %s: %w", seg.path, err)
		}
		if preallocated {
			// Zeros past the records: space the writer filled ahead of
			// them (topicLog.preallocate), not damage.
			seg.apply(sum)
			return nil
		}
		t.s.damaged(Damage{File: seg.path, Bytes: cut, Cut: true, Err: sum.err},
			"Journal segment ended with an incomplete or corrupt record; cut it off",
			watermill.LogFields{"topic": t.name, "file": seg.path, "bytes_cut": cut, "at": sum.valid, "records_kept": sum.count})
	}
	seg.apply(sum)
	return nil
}

// allZeros reports whether the bytes of the file at path from from to to
// are all zero.
func allZeros(path string, from, to int64) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for from < to {
		n, err := f.ReadAt(buf[:min(int64(len(buf)), to-from)], from)
		for _, b := range buf[:n] {
			if b != 0 {
				return false, nil
			}
		}
		from += int64(n)
		if err != nil {
			return false, err
		}
	}
	return true, nil
}

func truncateSync(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
