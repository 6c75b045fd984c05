// Package bus is sinkbus's entry point: an application publishes its domain
// events into a Bus, and every running integration whose filter matches
// receives them through its sink (webhook, aws_sqs, stomp, file, s3, an
// in-process handler, or a type the application registers).
//
// Each event is first appended to a journal (replay.Journal), then delivered
// by one Watermill router handler per running integration, reading from the
// integration's own durable cursor, through the filter and the delivery chain:
//
//	filter ▸ gate ▸ reject ▸ retry ▸ circuit breaker ▸ timeout ▸ recoverer ▸ sink
//
// The filter acknowledges the events the integration does not observe as
// the integration's consumer reads them, before they become messages; the
// gate holds the integration's concurrency and order key across live
// delivery, replays and manual retries; package middleware documents the
// rest of the chain.
//
// An integration belongs to a tenant or to the application
// (Integration.Tenant): a tenant's receives only that tenant's events,
// checked before its filter and again at its sink, and Integrations.Tenant
// is that tenant's view of the integrations, for the application to hand
// to it (bus/access does so over HTTP).
//
// A zero Config runs everything in memory, which is what tests want; a
// DataDir makes the journal, the integrations, their logs and rejected events
// survive restarts and crashes; Config.Postgres keeps them in PostgreSQL,
// shared by the application's replicas, which split the delivery.
//
// The bus imports no concrete sink: a program knows the sink types whose
// packages it imports (sinks/webhook, ...; sinks/all for every built-in
// one), and links no other. Integrations in Elastic Path's and NewStore's
// JSON are read by bus/formats; the bus speaks its own Integration.
package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/trace"

	"github.com/sinkbus/sinkbus/field"
	"github.com/sinkbus/sinkbus/internal/clock"
	"github.com/sinkbus/sinkbus/internal/dirlock"
	"github.com/sinkbus/sinkbus/internal/logging"
	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/replay"
	"github.com/sinkbus/sinkbus/replay/segments"
	"github.com/sinkbus/sinkbus/sinks"
)

// Topic is the journal topic the bus publishes its events to.
const Topic = "events"

// Errors returned by the bus. Match them with errors.Is.
var (
	ErrInvalid      = errors.New("sinkbus: invalid integration")
	ErrInvalidEvent = errors.New("sinkbus: invalid event")
	ErrNotFound     = errors.New("sinkbus: integration not found")
	ErrExists       = errors.New("sinkbus: integration already exists")
	ErrLimit        = errors.New("sinkbus: integration limit reached")
	ErrImmutable    = errors.New("sinkbus: field cannot change after creation")
	ErrNotRunning   = errors.New("sinkbus: integration is not running")
	ErrClosed       = errors.New("sinkbus: bus closed")
	// ErrAlreadyRunning is returned by Run when the bus runs, or ran
	// before: a Bus runs once.
	ErrAlreadyRunning = errors.New("sinkbus: bus already running (a bus runs once)")
	// ErrDataDirLocked is matched by the error of New when another process
	// (or another Bus in this one) holds the DataDir; the error names the
	// directory and, where it can be known, the holder's pid.
	ErrDataDirLocked = errors.New("sinkbus: data directory locked by another process")
)

// Limits of Config.MaxPayloadDepth.
const (
	// DefaultMaxPayloadDepth is deeper than any event a commerce
	// application sends, and than most JSON parsers of its receivers
	// accept.
	DefaultMaxPayloadDepth = 100
	// MaxPayloadDepth leaves room for the documents the bus wraps payloads
	// in, within encoding/json's 10000 levels.
	MaxPayloadDepth = 9000
)

// Clock is the time source of the bus; bustest has a controllable one.
type Clock = clock.Clock

// Config configures a Bus. Its zero value runs in memory with the defaults.
type Config struct {
	// DataDir holds the journal, the integrations, their logs and rejected
	// events. Empty means in memory: nothing survives the process. One
	// process at a time holds it: New locks it until Close (see
	// DataDirLockWait).
	DataDir string
	// DataDirLockWait is how long New waits for another process holding
	// DataDir to let go, so that in a rolling deploy or an overlapping
	// restart the new process takes over once the old one has closed. Zero
	// means New fails at once with ErrDataDirLocked.
	DataDirLockWait time.Duration
	// Postgres keeps everything in PostgreSQL instead, shared by the
	// replicas of the application: a *Postgres (see Postgres); not with
	// DataDir or Storage.
	Postgres Shared
	// Storage overrides the journal storage (tests, custom engines). Nil
	// means a segments.Storage in DataDir, or replay.NewMemory() without one.
	Storage replay.Storage
	// Sync is the journal's durability policy in DataDir. The zero value,
	// segments.SyncGroupCommit, returns from Publish once the events are on
	// disk, concurrent publishers sharing one fsync.
	Sync segments.SyncPolicy
	// Retention is how long the journal keeps events: how long a stopped
	// integration can catch up, and how far back a replay reaches. Zero
	// means 30 days; negative keeps them forever.
	Retention time.Duration
	// MemoryBytes bounds the journal of a bus without a DataDir: how many
	// bytes of events (payload, metadata and bookkeeping) it holds in
	// memory. When it is full, events every integration has delivered go
	// first; then the oldest, delivered or not, and each integration that
	// had not read them is told how many it lost (an
	// events_lost_to_retention entry in its log, an error log line, and
	// Observer.LostToRetention). Zero means replay.DefaultMemoryBytes
	// (64 MiB, about 45,000 events of 1 KiB); negative means no bound (only
	// Retention removes events). Ignored with a DataDir or a Storage.
	MemoryBytes int64
	// MaxIntegrations limits how many integrations each tenant may have;
	// the application's own integrations (no tenant) count as a group of
	// their own. Zero means 25.
	MaxIntegrations int
	// MaxTotalIntegrations limits how many integrations the bus holds,
	// every tenant's and the application's together. Zero means 1000.
	MaxTotalIntegrations int
	// MaxPayloadBytes limits an event's payload. Zero means 1 MiB.
	MaxPayloadBytes int
	// MaxPayloadDepth limits how deep an event's payload nests arrays and
	// objects. Zero means DefaultMaxPayloadDepth; at most MaxPayloadDepth.
	// The bus keeps payloads inside documents of its own (the rejected
	// store's), which encoding/json reads back only up to 10000 levels: an
	// event nesting near that would make the document unreadable.
	MaxPayloadDepth int
	// LogSize is how many log entries each integration keeps. Zero means 50.
	LogSize int
	// RejectedSize is how many rejected events each integration keeps. Zero
	// means 30.
	RejectedSize int
	// Concurrency is an integration's default number of parallel deliveries.
	// Zero means 8.
	Concurrency int
	// MaxWaitingBytes bounds, per integration, the memory held by events
	// read from the journal that wait for their turn: read ahead, or behind
	// a busy order key. A quarter of it may hold payloads; past that, a
	// waiting event keeps only its offset and key, and is read again when
	// its turn comes. At the bound reading pauses until deliveries make
	// room, and the integration log says so (reading_paused, then
	// reading_resumed). Events in flight are bounded by the concurrency
	// instead. Zero means 32 MiB.
	MaxWaitingBytes int64
	// Sinks maps integration types to their configurations. Nil means
	// sinks.DefaultRegistry(): the types of the sink packages the program
	// imports (each registers itself; sinks/all imports every built-in
	// one). The in-process handler type (HandlerType) is always known: New
	// adds it to the registry when it lacks it.
	Sinks *sinks.Registry
	// OnCircuitWarning is called once per failure streak, when an
	// integration's consecutive failed attempts reach its breaker's warning
	// threshold, with the integration's ref (Integration.Ref). Nil means no call. It runs on the goroutine of the delivery
	// that failed, which waits for it: keep it quick (hand an e-mail or a
	// page to another goroutine).
	OnCircuitWarning func(integrationRef string, consecutiveFailures int)
	// Observer is told about every delivery attempt, rejection and skip
	// (bus/metrics implements it). Nil means none, at no cost.
	Observer Observer
	// CloseTimeout bounds how long Close waits for the integrations to stop
	// (they stop concurrently: deliveries in flight finish, sinks flush).
	// Zero means 30 s.
	CloseTimeout time.Duration
	// StopGrace is how long stopping or updating an integration lets an
	// attempt under way finish before cancelling it (a cancelled event is
	// delivered again later). Waits between attempts end at once. Zero
	// means 5 s; negative means none.
	StopGrace time.Duration
	// AllowPrivateNetworks lets integrations that ask for it (the
	// allow_private_networks of webhook, stomp, aws_sqs and s3
	// configurations) connect to loopback, private, link-local and other
	// internal addresses: receivers, brokers and stores on the same host or
	// network, and tests. Both are needed: this alone lets no integration
	// through the network guard (package netguard). False refuses such
	// integrations, so that whoever may create integrations (through the
	// management API, say) cannot probe the network the application runs
	// in. Either way a literal internal address (or localhost) that the
	// guard would refuse is refused at creation, naming its field.
	AllowPrivateNetworks bool
	// PathRoot is the directory that the paths integrations name (a file
	// sink's dir, an s3 spool_dir, a STOMP tls.ca_file) must stay within:
	// ".." and symbolic links out of it are refused when an integration is
	// created or updated, naming the field. Relative paths start there.
	// Only the application's own code can let an integration name a path
	// elsewhere (Integration.UnconfinedPaths); JSON (bus/formats, the
	// management API) cannot. Empty means <DataDir>/exports; without a
	// DataDir either, an integration may name no path unless unconfined.
	PathRoot string
	// TracerProvider traces what the bus does with OpenTelemetry: each
	// Publish is a span, journalled with its events (W3C traceparent), and
	// each delivery attempt a span that continues it, whose context the
	// sinks send on (webhook and STOMP headers, SQS message attributes).
	// Nil means nothing is traced, journalled or sent, at no cost. Pass
	// otel.GetTracerProvider() for the application's global one, once it
	// has an SDK: a no-op provider still costs a little per delivery.
	TracerProvider trace.TracerProvider
	// Clock is the time source. Nil means the wall clock.
	Clock Clock
	// Logger receives the bus's logs, its Watermill components' included;
	// lines about an integration or an event carry integration_id and
	// event_id. Nil means warnings and errors through slog.Default() (a
	// journal repair, a sink that cannot start), nothing below.
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.MaxIntegrations == 0 {
		c.MaxIntegrations = 25
	}
	if c.MaxTotalIntegrations == 0 {
		c.MaxTotalIntegrations = 1000
	}
	if c.MaxPayloadBytes == 0 {
		c.MaxPayloadBytes = 1 << 20
	}
	if c.MaxPayloadDepth == 0 {
		c.MaxPayloadDepth = DefaultMaxPayloadDepth
	}
	if c.LogSize == 0 {
		c.LogSize = 50
	}
	if c.RejectedSize == 0 {
		c.RejectedSize = 30
	}
	if c.Concurrency == 0 {
		c.Concurrency = 8
	}
	if c.CloseTimeout == 0 {
		c.CloseTimeout = 30 * time.Second
	}
	if c.StopGrace == 0 {
		c.StopGrace = 5 * time.Second
	}
	if c.Sinks == nil {
		c.Sinks = sinks.DefaultRegistry()
	}
	if !c.Sinks.Has(HandlerType) {
		_ = c.Sinks.Register(handlerType) // fails only when another New added it first
	}
	if c.PathRoot == "" && c.DataDir != "" {
		c.PathRoot = filepath.Join(c.DataDir, "exports")
	}
	c.Clock = clock.OrReal(c.Clock)
	c.Logger = logging.OrDefault(c.Logger)
}

// Validate reports every invalid field of c.
func (c Config) Validate() error {
	var p field.Problems
	if c.MaxIntegrations < 0 {
		p.Add("MaxIntegrations", "must not be negative")
	}
	if c.MaxTotalIntegrations < 0 {
		p.Add("MaxTotalIntegrations", "must not be negative")
	}
	if c.MaxPayloadBytes < 0 {
		p.Add("MaxPayloadBytes", "must not be negative")
	}
	if c.MaxPayloadDepth < 0 || c.MaxPayloadDepth > MaxPayloadDepth {
		p.Add("MaxPayloadDepth", "must be between 0 and %d", MaxPayloadDepth)
	}
	if c.LogSize < 0 {
		p.Add("LogSize", "must not be negative")
	}
	if c.RejectedSize < 0 {
		p.Add("RejectedSize", "must not be negative")
	}
	if c.Concurrency < 0 || c.Concurrency > 1024 {
		p.Add("Concurrency", "must be between 0 and 1024")
	}
	if c.MaxWaitingBytes < 0 {
		p.Add("MaxWaitingBytes", "must not be negative")
	}
	if c.CloseTimeout < 0 {
		p.Add("CloseTimeout", "must not be negative")
	}
	if c.DataDirLockWait < 0 {
		p.Add("DataDirLockWait", "must not be negative")
	}
	if c.Postgres != nil {
		if c.DataDir != "" {
			p.Add("DataDir", "must be empty with Postgres")
		}
		if c.Storage != nil {
			p.Add("Storage", "must be nil with Postgres")
		}
		c.Postgres.problems(&p)
	}
	return p.Err()
}

// Bus delivers published events to integrations. Create it with New, start
// delivering with Run, stop with Close.
type Bus struct {
	cfg      Config
	wlog     watermill.LoggerAdapter // cfg.Logger, for the Watermill components
	tracer   trace.Tracer            // nil: nothing traced
	lock     *dirlock.Lock           // on DataDir; nil without one
	journal  *replay.Journal
	memory   *replay.Memory // the journal's storage, when in memory
	router   *message.Router
	logs     middleware.LogStore
	rejected middleware.RejectedStore
	store    integrationStore
	closers  []func() error

	// What deliveries write through: logs and rejected as above, fenced
	// by the integration's lease on PostgreSQL.
	deliveryLogs     middleware.LogStore
	deliveryRejected middleware.RejectedStore
	pg               replicas // nil without Config.Postgres

	mu      sync.Mutex // see runner for the locking rules
	runners map[string]*runner
	runCtx  context.Context // set while Run runs
	routing bool            // the router runs: integrations may start

	// routeMu orders adding handlers (read) before stopping the router
	// (write): see addHandler.
	routeMu  sync.RWMutex
	running  chan struct{} // closed once Run has started the integrations
	closed   bool
	runEnded bool // Run returned
	replays  int
	bg       sync.WaitGroup // background work Close waits for

	handlers atomic.Uint64 // router handlers added, for their names
}

// New opens a bus. With a DataDir it loads the integrations saved there;
// none delivers before Run.
func New(cfg Config) (*Bus, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	b := &Bus{cfg: cfg, wlog: logging.Watermill(cfg.Logger), tracer: newTracer(cfg.TracerProvider),
		runners: make(map[string]*runner), running: make(chan struct{})}
	if err := b.open(); err != nil {
		_ = b.closeStores()
		return nil, err
	}
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: cfg.CloseTimeout}, logging.Router(cfg.Logger))
	if err != nil {
		_ = b.closeStores()
		return nil, err
	}
	b.router = router
	if err := b.loadIntegrations(); err != nil {
		_ = b.closeStores()
		return nil, err
	}
	return b, nil
}

func (b *Bus) open() error {
	if b.cfg.Postgres != nil {
		pg, err := b.cfg.Postgres.open(b)
		if err != nil {
			return err
		}
		b.pg = pg
	}
	st := b.cfg.Storage
	switch {
	case b.pg != nil:
	case b.cfg.DataDir == "":
		b.logs = middleware.NewMemoryLog(b.cfg.LogSize)
		b.rejected = middleware.NewMemoryRejected(b.cfg.RejectedSize)
		b.store = memoryStore{}
		if st == nil {
			b.memory = replay.NewMemoryWith(replay.MemoryConfig{MaxBytes: b.cfg.MemoryBytes})
			st = b.memory
		}
	default:
		if err := os.MkdirAll(b.cfg.DataDir, 0o700); err != nil {
			return err
		}
		lock, err := dirlock.Acquire(b.cfg.DataDir, b.cfg.DataDirLockWait)
		if errors.Is(err, dirlock.ErrLocked) {
			return fmt.Errorf("%w: %w", ErrDataDirLocked, err)
		}
		if err != nil {
			return err
		}
		b.lock = lock
		logs, err := middleware.OpenFileLog(filepath.Join(b.cfg.DataDir, "log"), b.cfg.LogSize)
		if err != nil {
			return err
		}
		b.logs = logs
		rejected, err := middleware.OpenFileRejected(filepath.Join(b.cfg.DataDir, "rejected"), b.cfg.RejectedSize)
		if err != nil {
			return err
		}
		b.rejected = rejected
		for _, err := range append(logs.Unreadable(), rejected.Unreadable()...) {
			b.cfg.Logger.Error("A stored document cannot be read; the bus starts without it", "error", err)
		}
		b.store = fileStore{path: filepath.Join(b.cfg.DataDir, "integrations.json")}
		if st == nil {
			cfg := segments.Config{
				Dir:      filepath.Join(b.cfg.DataDir, "journal"),
				Sync:     b.cfg.Sync,
				Logger:   b.wlog, // errors (a repair that cut data) reach slog.Default() by default
				OnDamage: b.journalDamaged,
			}
			if b.cfg.Observer != nil {
				cfg.OnSync = b.cfg.Observer.JournalSynced
			}
			seg, err := segments.Open(cfg)
			if err != nil {
				return err
			}
			st = seg
		}
	}
	if b.deliveryLogs == nil {
		b.deliveryLogs, b.deliveryRejected = b.logs, b.rejected
	}
	if m, ok := st.(*replay.Memory); ok {
		b.memory = m
	}
	j, err := replay.Open(replay.Config{
		Storage:   st,
		Retention: b.cfg.Retention,
		Clock:     b.cfg.Clock,
		Logger:    b.wlog,
	})
	if err != nil {
		if st != nil {
			_ = st.Close()
		}
		return err
	}
	b.journal = j
	return nil
}

func (b *Bus) closeStores() error {
	var errs []error
	if b.pg != nil {
		errs = append(errs, b.pg.close())
	}
	if b.journal != nil {
		errs = append(errs, b.journal.Close())
	} else if b.pg != nil {
		errs = append(errs, b.pg.closeJournal())
	}
	if b.pg != nil {
		b.pg.closePool()
	}
	for _, c := range []any{b.logs, b.rejected} {
		if c, ok := c.(interface{ Close() error }); ok {
			errs = append(errs, c.Close())
		}
	}
	errs = append(errs, b.lock.Release()) // last: everything in DataDir is closed
	return errors.Join(errs...)
}

// journalDamaged tells the Observer about data the journal storage could
// not keep (the storage has logged it).
func (b *Bus) journalDamaged(d segments.Damage) {
	if b.cfg.Observer != nil {
		b.cfg.Observer.JournalDamaged(d)
	}
}

// Publish validates events and appends them to the journal, all or none.
// It returns once they are durable (as Config.Sync promises) and never
// waits for an integration. Errors name the field: `events[1].name: required`.
func (b *Bus) Publish(ctx context.Context, events ...Event) error {
	return b.publish(ctx, events, func(_ context.Context, recs []*replay.Record) error {
		if err := b.journal.Append(Topic, recs...); err != nil {
			if errors.Is(err, replay.ErrClosed) {
				return ErrClosed
			}
			return err
		}
		return nil
	})
}

// publish validates events, traces the call and journals the records
// through write.
func (b *Bus) publish(ctx context.Context, events []Event, write func(context.Context, []*replay.Record) error) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(events) == 0 {
		return nil
	}
	if b.tracer != nil {
		var span trace.Span
		ctx, span = b.startPublish(ctx, events)
		defer func() { endSpan(span, err) }()
	}
	recs, err := b.records(ctx, events)
	if err != nil {
		return err
	}
	return write(ctx, recs)
}

// records validates events and makes their journal records.
func (b *Bus) records(ctx context.Context, events []Event) ([]*replay.Record, error) {
	now := b.cfg.Clock.Now()
	var p field.Problems
	recs := newRecords(len(events))
	for i := range events {
		e := events[i]
		prefix := ""
		if len(events) > 1 {
			prefix = fmt.Sprintf("events[%d].", i)
		}
		e.validate(&p, prefix, b.cfg.MaxPayloadBytes, b.cfg.MaxPayloadDepth)
		if e.PublishedAt.IsZero() {
			e.PublishedAt = now
		}
		e.record(recs[i])
	}
	if err := p.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidEvent, err)
	}
	if b.tracer != nil {
		journalTrace(ctx, recs)
	}
	return recs, nil
}

// Run delivers events until ctx is done or Close is called. Integrations
// created before Run start delivering when it starts. A Bus runs once: a
// second call returns ErrAlreadyRunning, even after the first returned.
func (b *Bus) Run(ctx context.Context) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ErrClosed
	}
	if b.runCtx != nil {
		b.mu.Unlock()
		return ErrAlreadyRunning
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	b.runCtx = ctx
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.routing = false // the router is closed: it takes no new handler
		b.runEnded = true
		b.mu.Unlock()
	}()

	// The router closes itself when its last handler stops; this one keeps
	// it open while every integration is stopped.
	b.router.AddConsumerHandler("sinkbus-keepalive", "keepalive", idleSubscriber{}, func(*message.Message) error { return nil })
	// The router stops on a context of its own, once no handler can be
	// added any more (stopRouting).
	routerCtx, stopRouter := context.WithCancel(context.Background())
	defer stopRouter()
	go func() {
		<-ctx.Done()
		b.stopRouting()
		stopRouter()
	}()
	errc := make(chan error, 1)
	go func() { errc <- b.router.Run(routerCtx) }()
	select {
	case <-b.router.Running():
	case err := <-errc:
		return err
	}

	// From here on Create starts what it creates; the integrations that
	// exist already are started here.
	b.mu.Lock()
	b.routing = true
	var starting []*runner
	if !b.closed {
		for _, r := range b.runners {
			starting = append(starting, r)
		}
	}
	b.mu.Unlock()
	for _, r := range starting {
		b.startSaved(r)
	}
	if b.pg != nil {
		b.pg.run(ctx)
	}
	close(b.running)
	return <-errc
}

// startSaved starts r when it is to run.
func (b *Bus) startSaved(r *runner) {
	r.op.Lock()
	defer r.op.Unlock()
	b.mu.Lock()
	run, id := r.in.Status == Running, r.in.Ref()
	b.mu.Unlock()
	if !run {
		return
	}
	if err := r.start(); err != nil {
		b.logErr("Cannot start integration", err, id)
	}
}

// Running is closed once Run has started every integration.
func (b *Bus) Running() <-chan struct{} { return b.running }

// Close stops delivering, waits (up to Config.CloseTimeout) for the
// integrations to stop, all at once (deliveries in flight finish, sinks
// flush), and saves everything. Events not yet delivered stay in the
// journal. It is idempotent.
func (b *Bus) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	runners := make(map[string]*runner, len(b.runners))
	for id, r := range b.runners {
		runners[id] = r
	}
	b.mu.Unlock()

	// The bound is real time, whatever clock the bus runs on: it bounds
	// how long the application waits.
	bound, cancel := context.WithTimeout(context.Background(), b.cfg.CloseTimeout)
	defer cancel()
	type result struct {
		id  string
		err error
	}
	results := make(chan result, len(runners))
	pending := make(map[string]bool, len(runners))
	for id, r := range runners {
		pending[id] = true
		go func() {
			r.op.Lock()
			defer r.op.Unlock()
			results <- result{id, r.stop()}
		}()
	}
	var errs []error
wait:
	for range runners {
		select {
		case res := <-results:
			delete(pending, res.id)
			if res.err != nil {
				errs = append(errs, fmt.Errorf("sinkbus: stopping integration %q: %w", res.id, res.err))
			}
		case <-bound.Done():
			ids := make([]string, 0, len(pending))
			for id := range pending {
				ids = append(ids, id)
			}
			sort.Strings(ids)
			errs = append(errs, fmt.Errorf("sinkbus: integrations still stopping after %s: %s",
				b.cfg.CloseTimeout, strings.Join(ids, ", ")))
			break wait
		}
	}

	b.stopRouting()
	closed := make(chan error, 1)
	go func() {
		err := b.router.Close()
		b.bg.Wait()
		closed <- err
	}()
	select {
	case err := <-closed:
		errs = append(errs, err)
	case <-bound.Done():
		if len(pending) == 0 { // else said above
			errs = append(errs, fmt.Errorf("sinkbus: router still closing after %s", b.cfg.CloseTimeout))
		}
	}
	errs = append(errs, b.closeStores())
	return errors.Join(errs...)
}

// addHandler adds a router handler and runs it on the bus's run context;
// ok is false when the router is stopping and takes none. Watermill's
// router stops once its last handler has stopped, and a handler added
// while it waits for that races with it (it panics: "WaitGroup is reused
// before previous Wait has returned"); so handlers are added under
// routeMu's read lock while routing, and routing ends under its write lock
// before the router is stopped (Close, or Run's context ending).
func (b *Bus) addHandler(name string, sub message.Subscriber, fn message.NoPublishHandlerFunc) (h *message.Handler, ok bool, err error) {
	b.routeMu.RLock()
	defer b.routeMu.RUnlock()
	b.mu.Lock()
	routing, runCtx := b.routing && !b.closed, b.runCtx
	b.mu.Unlock()
	if !routing {
		return nil, false, nil
	}
	h = b.router.AddConsumerHandler(name, Topic, sub, fn)
	return h, true, b.router.RunHandlers(runCtx)
}

// stopRouting ends routing: once it returns, no handler is being added or
// will be.
func (b *Bus) stopRouting() {
	b.routeMu.Lock()
	defer b.routeMu.Unlock()
	b.mu.Lock()
	b.routing = false
	b.mu.Unlock()
}

// closing reports whether Close was called.
func (b *Bus) closing() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// background runs fn in a goroutine that Close waits for, unless Close has
// begun: then it runs untracked.
func (b *Bus) background(fn func()) {
	b.mu.Lock()
	tracked := !b.closed
	if tracked {
		b.bg.Add(1)
	}
	b.mu.Unlock()
	go func() {
		if tracked {
			defer b.bg.Done()
		}
		fn()
	}()
}

// Unhandle removes the in-process handler of ref id (Integration.Ref): what
// Handle registered, or what a handler the application no longer registers
// left in the journal (its cursor), its log and rejected events. Without
// it, a handler's cursor stays after the application stops calling Handle
// for it.
func (b *Bus) Unhandle(id string) error {
	b.mu.Lock()
	r, ok := b.runners[id]
	isHandler := ok && r.in.Type() == HandlerType
	b.mu.Unlock()
	if ok && !isHandler {
		return fmt.Errorf("%w: %s is not an in-process handler", ErrNotFound, quoteID(id))
	}
	return b.Integrations().Delete(context.Background(), id)
}

func (b *Bus) log(id, action, reason string) { b.logEntry(id, b.logLine(action, reason)) }

// logLine is a log entry of the bus's own, stamped now.
func (b *Bus) logLine(action, reason string) middleware.LogEntry {
	return middleware.LogEntry{Action: action, Reason: reason, CreatedAt: b.cfg.Clock.Now()}
}

// logEntry appends e to the log of integration id.
func (b *Bus) logEntry(id string, e middleware.LogEntry) {
	if err := b.logs.Append(id, e); err != nil {
		b.logErr("Cannot write integration log", err, id)
	}
}

// logErr logs err, about integration id unless it is empty.
func (b *Bus) logErr(msg string, err error, id string) {
	if id == "" {
		b.cfg.Logger.Error(msg, "error", err)
		return
	}
	b.cfg.Logger.Error(msg, "error", err, logging.IntegrationID, id)
}

// idleSubscriber yields nothing until its context ends.
type idleSubscriber struct{}

func (idleSubscriber) Subscribe(ctx context.Context, _ string) (<-chan *message.Message, error) {
	ch := make(chan *message.Message)
	context.AfterFunc(ctx, func() { close(ch) })
	return ch, nil
}

func (idleSubscriber) Close() error { return nil }
