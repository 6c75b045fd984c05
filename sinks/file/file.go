// Package file is the NDJSON export sink: each event becomes one line (its
// envelope, see sinks.AppendEnvelope) in files named
//
//	{dir}/{key_prefix}/{tenant}/{epoch_ms}-data-{random}.export
//
// as NewStore's S3 export names its objects. Each tenant has one open file
// at a time; a file is finished when it is RotateEvery old (a timer finishes
// idle files too) or would grow past RotateBytes. An open file carries a
// ".tmp" suffix and gets its final name only when finished, so a reader
// never sees a partial file; a crash leaves the temporary file, which the
// next New completes, cut after its last whole line.
//
// Publish returns once its lines are as durable as Config.Fsync says, and
// always written to the operating system, so killing the process loses no
// event Publish accepted. Concurrent Publish calls share the work: one of
// them writes every line buffered meanwhile in one call and, under
// FsyncBatch, syncs once for all (group commit).
package file

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sinkbus/sinkbus/internal/atomicfile"
	"github.com/sinkbus/sinkbus/internal/clock"
	"github.com/sinkbus/sinkbus/sinks"
)

// Publisher is the file sink, a Watermill message.Publisher. Publish is
// safe for concurrent use.
type Publisher struct {
	cfg  Config
	env  sinks.Env
	root string // Dir joined with KeyPrefix
	log  watermill.LoggerAdapter
	lock *DirLock // nil when the caller holds it (Config.Lock)

	closeMu sync.RWMutex // Publish holds it shared, Close exclusively
	closed  bool

	mu      sync.Mutex
	tenants map[string]*tenant

	timers sync.WaitGroup // one goroutine per open file, finishing it when due
	lines  sync.Pool      // *[]byte
}

// New returns a file sink writing under cfg.Dir. It takes the directory's
// lock, then completes the temporary files a previous run left in that
// directory tree. While another sink holds the directory it fails with a
// *field.Error for "dir".
func New(cfg Config, env sinks.Env) (*Publisher, error) {
	env = env.Defaults()
	cfg, err := cfg.resolve(env)
	if err != nil {
		return nil, err
	}
	var lock *DirLock
	switch {
	case cfg.Lock == nil:
		if lock, err = LockDir(cfg.Dir); err != nil {
			return nil, DirError("dir", err, env)
		}
	case filepath.Clean(cfg.Lock.Dir()) != cfg.Dir:
		return nil, fmt.Errorf("sinkbus: file: Config.Lock holds %s, not the directory %s", cfg.Lock.Dir(), cfg.Dir)
	}
	p := &Publisher{
		lock:    lock,
		cfg:     cfg,
		env:     env,
		root:    filepath.Join(cfg.Dir, filepath.FromSlash(cfg.KeyPrefix)),
		log:     env.Logger.With(watermill.LogFields{"sink": "file"}),
		tenants: make(map[string]*tenant),
	}
	recovered, err := p.recoverDir(cfg.Dir)
	if err != nil {
		_ = lock.Unlock()
		return nil, err
	}
	p.notify(recovered...)
	return p, nil
}

// Dir returns the directory the files go to, with defaults applied.
func (p *Publisher) Dir() string { return p.cfg.Dir }

// Publish appends one line per message to its tenant's open file and
// returns when the lines are as durable as Config.Fsync says. The topic is
// ignored. Errors (disk full, permission denied, ...) are retryable.
func (p *Publisher) Publish(_ string, msgs ...*message.Message) error {
	p.closeMu.RLock()
	defer p.closeMu.RUnlock()
	if p.closed {
		return sinks.ErrClosed
	}
	buf := p.getLine()
	defer p.putLine(buf)

	var finished []string
	defer func() { p.notify(finished...) }()
	var pending []commitPoint // lines to commit once the tenant locks are released
	for _, msg := range msgs {
		*buf = append(sinks.AppendEnvelope((*buf)[:0], msg), '\n')
		t := p.tenant(msg.Metadata.Get(sinks.MetaTenant))
		cp, done, err := p.write(t, *buf)
		finished = append(finished, done...)
		if err != nil {
			p.log.Error("Could not write event to export file", err, watermill.LogFields{"event_id": msg.UUID, "dir": t.dir})
			return err
		}
		if cp.seg != nil {
			pending = addCommitPoint(pending, cp)
		}
	}
	for _, cp := range pending {
		if err := cp.seg.commit(cp.end); err != nil {
			p.log.Error("Could not write event to export file", err, watermill.LogFields{"path": cp.seg.tmp})
			return err
		}
	}
	return nil
}

// Close finishes the open files and releases the directory's lock. It is
// idempotent; Publish returns sinks.ErrClosed afterwards. A file that cannot
// be finished stays as a temporary file that the next New completes.
func (p *Publisher) Close() error {
	p.closeMu.Lock()
	if p.closed {
		p.closeMu.Unlock()
		return nil
	}
	p.closed = true
	p.closeMu.Unlock()

	p.mu.Lock()
	tenants := make([]*tenant, 0, len(p.tenants))
	for _, t := range p.tenants {
		tenants = append(tenants, t)
	}
	p.mu.Unlock()

	var finished []string
	var errs []error
	for _, t := range tenants {
		t.mu.Lock()
		if s := t.cur; s != nil {
			path, err := p.finish(t, s)
			if path != "" {
				finished = append(finished, path)
			}
			errs = append(errs, err)
		}
		t.mu.Unlock()
	}
	p.timers.Wait()
	p.notify(finished...)
	errs = append(errs, p.lock.Unlock())
	return errors.Join(errs...)
}

// tenant returns the state of the tenant named name.
func (p *Publisher) tenant(name string) *tenant {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.tenants[name]
	if t == nil {
		t = &tenant{dir: filepath.Join(p.root, PathSegment(name))}
		p.tenants[name] = t
	}
	return t
}

// write appends line to t's open file, rotating it first when due. It
// returns where the line ends when the caller must still commit it, and
// the files it finished.
func (p *Publisher) write(t *tenant, line []byte) (cp commitPoint, finished []string, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := p.env.Clock.Now()
	if s := t.cur; s != nil && (now.Sub(s.created) >= p.cfg.RotateEvery.D() ||
		s.size+int64(len(line)) > p.cfg.RotateBytes || s.bad.Load()) {
		path, _ := p.finish(t, s)
		finished = appendPath(finished, path)
	}
	if t.cur == nil {
		if err := p.open(t, now); err != nil {
			return cp, finished, err
		}
	}
	s := t.cur
	end := s.append(line)
	switch {
	case s.size >= p.cfg.RotateBytes:
		// Full: finishing writes and syncs it, whatever the policy.
		path, _ := p.finish(t, s)
		finished = appendPath(finished, path)
		err = s.commit(end) // reports whether finishing wrote the line
	case p.cfg.Fsync == FsyncEvent:
		err = s.commit(end)
	default:
		cp = commitPoint{seg: s, end: end}
	}
	return cp, finished, err
}

// open starts a new file for t. Called with t.mu held.
func (p *Publisher) open(t *tenant, now time.Time) error {
	if err := os.MkdirAll(t.dir, 0o755); err != nil {
		return fmt.Errorf("sinkbus: file: %w", err)
	}
	final := filepath.Join(t.dir, fileName(now))
	f, err := os.OpenFile(final+tmpSuffix, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("sinkbus: file: %w", err)
	}
	if p.cfg.Fsync != FsyncRotation {
		// A synced line is only durable if the file's name is, and the
		// names of the directories above it the first time.
		err := atomicfile.SyncDir(t.dir)
		top := filepath.Dir(p.cfg.Dir)
		for dir := t.dir; err == nil && !t.synced && dir != top && dir != filepath.Dir(dir); {
			dir = filepath.Dir(dir)
			err = atomicfile.SyncDir(dir)
		}
		if err != nil {
			f.Close()
			os.Remove(final + tmpSuffix)
			return fmt.Errorf("sinkbus: file: %w", err)
		}
		t.synced = true
	}
	s := &segment{
		f:       f,
		buf:     make([]byte, 0, bufferSize),
		sync:    p.cfg.Fsync != FsyncRotation,
		gather:  p.cfg.Fsync != FsyncEvent,
		tmp:     final + tmpSuffix,
		final:   final,
		created: now,
		done:    make(chan struct{}),
	}
	s.cond.L = &s.mu
	t.cur = s
	timer := p.env.Clock.NewTimer(p.cfg.RotateEvery.D())
	p.timers.Add(1)
	go p.expire(t, s, timer)
	return nil
}

// expire finishes s when it is RotateEvery old, unless it was finished before.
func (p *Publisher) expire(t *tenant, s *segment, timer clock.Timer) {
	defer p.timers.Done()
	select {
	case <-timer.C():
	case <-s.done:
		timer.Stop()
		return
	}
	var path string
	t.mu.Lock()
	if t.cur == s {
		path, _ = p.finish(t, s)
	}
	t.mu.Unlock()
	p.notify(path)
}

// finish syncs, closes and renames s to its final name; an empty s is
// removed instead. On failure the temporary file stays for the next New.
// Called with t.mu held.
func (p *Publisher) finish(t *tenant, s *segment) (string, error) {
	t.cur = nil
	close(s.done)
	path, err := s.finish()
	if err != nil {
		msg := "Could not finish export file; it stays as a temporary file until the next start"
		if path != "" {
			msg = "Could not make the name of a finished export file durable"
		}
		p.log.Error(msg, err, watermill.LogFields{"path": s.tmp})
	} else if path != "" {
		p.log.Debug("Export file finished", watermill.LogFields{"path": path, "bytes": s.size})
	}
	return path, err
}

// notify calls OnFinalized for each path.
func (p *Publisher) notify(paths ...string) {
	if p.cfg.OnFinalized == nil {
		return
	}
	for _, path := range paths {
		if path != "" {
			p.cfg.OnFinalized(path)
		}
	}
}

func appendPath(paths []string, path string) []string {
	if path == "" {
		return paths
	}
	return append(paths, path)
}

func (p *Publisher) getLine() *[]byte {
	if b, ok := p.lines.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, 2048)
	return &b
}

func (p *Publisher) putLine(b *[]byte) {
	if cap(*b) <= 1<<20 { // do not keep a rare huge event's buffer alive
		p.lines.Put(b)
	}
}
