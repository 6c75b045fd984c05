// Package postgres keeps the journal in PostgreSQL: a replay.Storage that
// several processes (replicas of one application) share, beside the
// embedded segment log.
//
// Writers insert rows and nothing else; readers see a topic as a dense
// sequence of offsets, as every Storage does. Between the two, an orderer
// gives committed records their offsets in transaction id order, but only
// below pg_snapshot_xmin(pg_current_snapshot()): every transaction with a
// smaller id has ended there, so no record can still appear before one that
// already has its place. That is how a record whose transaction commits late
// is never skipped (sequence values commit out of order; a reader at
// "id > cursor" would step over it). ARCHITECTURE.md has the whole design:
// schema, visibility rule, batching, retention, wake-ups.
package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sinkbus/sinkbus/field"
	"github.com/sinkbus/sinkbus/internal/pgmigrate"
	"github.com/sinkbus/sinkbus/replay"
)

// ErrClosed is returned by a closed Storage.
var ErrClosed = errors.New("sinkbus: postgres journal closed")

// DefaultSchema holds the tables when Config.Schema is empty.
const DefaultSchema = "sinkbus"

// maxSchemaLen keeps the notification channel, "<schema>_journal", within
// PostgreSQL's 63-byte identifiers.
const maxSchemaLen = 55

// Config configures Open.
type Config struct {
	// Pool is a pool the application already has. The storage shares it and
	// leaves it open on Close; it opens one connection of its own besides,
	// for LISTEN. Either Pool or URL is required.
	Pool *pgxpool.Pool
	// URL is a PostgreSQL connection string ("postgres://..." or
	// "host=... dbname=..."), used when Pool is nil: the storage opens its
	// own pool and closes it on Close.
	URL string
	// Schema holds the journal's tables; it is created when missing and its
	// tables migrated on Open. Empty means DefaultSchema ("sinkbus").
	Schema string
	// OrderWait is how long Append waits for its records' offsets when the
	// ordering that follows their commit could not place them: for every
	// transaction that began before theirs to end (an application's
	// transaction open elsewhere on the server holds them back). Past it
	// Append returns without offsets; the records are durable and readers
	// get them once ordered. Zero means 1 s.
	OrderWait time.Duration
	// PollEvery is how often the storage looks for records that other
	// processes appended when no notification said so (the LISTEN
	// connection is down, or a notification was lost). Zero means 5 s.
	PollEvery time.Duration
	// Timeout bounds each database call. Zero means 10 s.
	Timeout time.Duration
	// MaxBatch is the most records one insert carries. Zero means 1000.
	MaxBatch int
	// Logger; nil means watermill.NopLogger{}.
	Logger watermill.LoggerAdapter
}

func (c *Config) setDefaults() {
	if c.Schema == "" {
		c.Schema = DefaultSchema
	}
	if c.OrderWait == 0 {
		c.OrderWait = time.Second
	}
	if c.PollEvery == 0 {
		c.PollEvery = 5 * time.Second
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = 1000
	}
	if c.Logger == nil {
		c.Logger = watermill.NopLogger{}
	}
}

// Validate reports every problem of the configuration at once.
func (c Config) Validate() error {
	var p field.Problems
	if c.Pool == nil && c.URL == "" {
		p.Add("url", "is required without a pool")
	}
	if c.URL != "" {
		if _, err := pgxpool.ParseConfig(c.URL); err != nil {
			p.Add("url", "is not a PostgreSQL connection string")
		}
	}
	if len(c.Schema) > maxSchemaLen {
		p.Add("schema", "must be at most %d bytes", maxSchemaLen)
	}
	if !textSafe(c.Schema) {
		p.Add("schema", "must be UTF-8 without NUL bytes")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"order_wait", c.OrderWait}, {"poll_every", c.PollEvery}, {"timeout", c.Timeout}} {
		if d.v < 0 {
			p.Add(d.name, "must not be negative")
		}
	}
	if c.MaxBatch < 0 {
		p.Add("max_batch", "must not be negative")
	}
	return p.Err()
}

// Storage is a replay.Storage in a PostgreSQL schema. Safe for concurrent
// use, by any number of processes on one schema.
type Storage struct {
	cfg     Config
	pool    *pgxpool.Pool
	ownPool bool
	q       queries
	log     watermill.LoggerAdapter
	channel string // of notifications
	id      string // this storage's name in its notifications

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu           sync.Mutex
	closed       bool
	pending      []*appendCall
	kick         chan struct{} // wakes the inserter
	inserterDone chan struct{}

	ord orderer

	known sync.Map // topic -> struct{}: its journal_topics row exists

	daysMu sync.Mutex
	days   map[string]bool // partitions known to exist, by day name

	wake    atomic.Pointer[func(topic string)]
	fence   atomic.Pointer[Fence]
	boundMu sync.Mutex
	bounds  map[string][2]uint64 // the last bounds read, for when the database is away

	savedMu sync.Mutex
	saved   map[replay.CursorKey]replay.Cursor // what the table holds, as far as we know

	inserts atomic.Uint64 // insert statements run, for tests
}

var (
	_ replay.Storage       = (*Storage)(nil)
	_ replay.AppendWatcher = (*Storage)(nil)
)

// Open connects (or takes cfg.Pool), creates or migrates the schema, and
// starts the storage's inserter, orderer and listener.
func Open(ctx context.Context, cfg Config) (*Storage, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Storage{
		cfg:          cfg,
		pool:         cfg.Pool,
		q:            newQueries(pgx.Identifier{cfg.Schema}.Sanitize()),
		log:          cfg.Logger.With(watermill.LogFields{"journal_schema": cfg.Schema}),
		channel:      cfg.Schema + "_journal",
		id:           randomID(),
		kick:         make(chan struct{}, 1),
		inserterDone: make(chan struct{}),
		days:         make(map[string]bool),
		bounds:       make(map[string][2]uint64),
	}
	if s.pool == nil {
		pool, err := pgxpool.New(ctx, cfg.URL)
		if err != nil {
			return nil, fmt.Errorf("sinkbus: postgres journal: %w", err)
		}
		s.pool, s.ownPool = pool, true
	}
	if err := pgmigrate.Migrate(ctx, s.pool, cfg.Schema, component, migrations); err != nil {
		s.closePool()
		return nil, fmt.Errorf("sinkbus: postgres journal schema %s: %w", cfg.Schema, err)
	}
	saved, err := s.loadCursors(ctx)
	if err != nil {
		s.closePool()
		return nil, err
	}
	s.saved = saved
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.ord.init()
	s.wg.Add(1)
	go s.listen()
	go s.insertLoop()
	go s.orderLoop()
	return s, nil
}

// WatchAppends implements replay.AppendWatcher: wake is called with a topic
// when records appended by another process (or ordered late) can be read.
func (s *Storage) WatchAppends(wake func(topic string)) {
	s.wake.Store(&wake)
}

func (s *Storage) wakeReaders(topic string) {
	if w := s.wake.Load(); w != nil {
		(*w)(topic)
	}
}

// call runs fn with a context bounded by Config.Timeout and ended by Close.
func (s *Storage) call(fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.Timeout)
	defer cancel()
	return fn(ctx)
}

// CheckAppend implements replay.AppendChecker for bus readiness: ErrClosed
// after Close, else whether the server answers a ping within
// Config.Timeout, which every append needs. The topic does not matter.
func (s *Storage) CheckAppend(string) error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return ErrClosed
	}
	return s.call(func(ctx context.Context) error {
		if err := s.pool.Ping(ctx); err != nil {
			return fmt.Errorf("sinkbus: postgres journal: the server does not answer: %w", err)
		}
		return nil
	})
}

var _ replay.AppendChecker = (*Storage)(nil)

// Close stops taking appends, inserts and orders what it holds, and closes
// the pool if it opened it. It is idempotent.
func (s *Storage) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.kickInserter()
	<-s.inserterDone // what was pending is inserted (or failed)
	s.ord.close()    // ordered, or left for readers to find
	<-s.ord.done
	s.cancel() // the listener
	s.wg.Wait()
	s.closePool()
	return nil
}

func (s *Storage) closePool() {
	if s.ownPool {
		s.pool.Close()
	}
}

func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
