package bus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgxlisten"

	"github.com/sinkbus/sinkbus/field"
	"github.com/sinkbus/sinkbus/internal/logging"
	"github.com/sinkbus/sinkbus/internal/pgstate"
	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/replay"
	"github.com/sinkbus/sinkbus/replay/postgres"
	"github.com/sinkbus/sinkbus/sinks"
)

// Postgres keeps everything the bus keeps in a PostgreSQL schema that the
// replicas of an application share (Config.Postgres): the journal, the
// cursors, the integrations, their logs and rejected events. Each running
// integration is delivered by one replica at a time, under a lease with a
// fencing token; the integrations are spread across the replicas alive,
// and a replica that dies has its integrations taken over, from their
// saved cursors, within LeaseTTL. A change made through any replica
// reaches the one delivering within a second (LISTEN/NOTIFY, and a poll).
// ARCHITECTURE.md has the design and what each failure does.
type Postgres struct {
	// Pool is a pool the application already has; the bus leaves it open
	// on Close. It also opens two connections of its own for LISTEN.
	// Either Pool or URL is required.
	Pool *pgxpool.Pool
	// URL is a connection string ("postgres://..."), used without a Pool:
	// the bus opens its pool and closes it on Close.
	URL string
	// Schema holds the tables; the bus creates and migrates it (safe when
	// replicas start at once). Empty means "sinkbus".
	Schema string
	// LeaseTTL bounds how long a replica that died keeps its integrations:
	// the others take them over within it. Leases are renewed every fifth
	// of it and expire at four fifths; a replica that cannot renew starts
	// no attempt past two fifths and stops its integrations then, so that
	// attempts under way end (within StopGrace: keep it under two fifths
	// of LeaseTTL) before another may take over. Zero means 15 s; at least
	// 1 s.
	LeaseTTL time.Duration
	// Replica names this replica in the lease rows; empty means
	// host-pid-random. Two live replicas must not share a name.
	Replica string
}

// DefaultLeaseTTL is Postgres.LeaseTTL's default.
const DefaultLeaseTTL = 15 * time.Second

func (p *Postgres) problems(probs *field.Problems) {
	if p.Pool == nil && p.URL == "" {
		probs.Add("Postgres.URL", "required without Postgres.Pool")
	}
	if p.URL != "" {
		if _, err := pgxpool.ParseConfig(p.URL); err != nil {
			probs.Add("Postgres.URL", "is not a PostgreSQL connection string")
		}
	}
	if p.LeaseTTL != 0 && p.LeaseTTL < time.Second {
		probs.Add("Postgres.LeaseTTL", "must be at least 1s")
	}
}

// pgBackend is the bus on PostgreSQL: its stores, and its share of the
// work.
type pgBackend struct {
	b       *Bus
	cfg     Postgres
	pool    *pgxpool.Pool
	ownPool bool
	journal *postgres.Storage
	state   *pgstate.Store
	replica string

	ctx         context.Context // ended by close
	endCtx      context.CancelFunc
	kick        chan struct{} // a change to apply, now
	unreachable bool          // the last step could not reach the database (the loop's own)
	cancel      context.CancelFunc
	done        chan struct{} // closed when the loop ended

	mu   sync.Mutex
	held map[string]int64 // ref -> fencing token of the leases held

	// versions are the versions of the integrations' rows this replica's
	// runners hold: a change is written over the version it was made on,
	// else it is made again on what the database holds (Bus.change).
	versions map[string]int64

	syncMu sync.Mutex // one sync at a time

	// saves counts this replica's writes of each integration (under mu): a
	// sync that read the rows before one of them must not undo it.
	saves map[string]uint64

	// sure is until when (nanoseconds since base, monotonic) every lease
	// held is surely not another's: two fifths of a lease after the last renewal
	// was sent. No attempt starts past it.
	sure atomic.Int64
	base time.Time
}

// ErrLeaseLost is what an attempt of a replica that can no longer be sure
// it holds the integration's lease fails with: it makes no attempt.
var ErrLeaseLost = errors.New("sinkbus: this replica may no longer hold the integration's lease")

// fenceAttempts refuses to start an attempt past the time this replica is
// sure of its leases: a replica paused (SIGSTOP, a long GC, a VM frozen)
// or cut off from the database starts nothing once it resumes, before its
// loop has even noticed.
func (p *pgBackend) fenceAttempts(ref string, publish message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		if time.Since(p.base).Nanoseconds() > p.sure.Load() || !p.holds(ref) {
			return nil, ErrLeaseLost
		}
		return publish(msg)
	}
}

// open opens the journal and the stores in the database for b.
func (c *Postgres) open(b *Bus) (replicas, error) {
	pc := *c
	if pc.Schema == "" {
		pc.Schema = postgres.DefaultSchema
	}
	if pc.LeaseTTL == 0 {
		pc.LeaseTTL = DefaultLeaseTTL
	}
	if pc.Replica == "" {
		host, _ := os.Hostname()
		var r [4]byte
		_, _ = rand.Read(r[:])
		pc.Replica = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(r[:]))
	}
	p := &pgBackend{b: b, cfg: pc, pool: pc.Pool, replica: pc.Replica, kick: make(chan struct{}, 1),
		held: make(map[string]int64), versions: make(map[string]int64), saves: make(map[string]uint64), base: time.Now()}
	p.ctx, p.endCtx = context.WithCancel(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if p.pool == nil {
		pool, err := pgxpool.New(ctx, pc.URL)
		if err != nil {
			return nil, fmt.Errorf("sinkbus: postgres: %w", err)
		}
		p.pool, p.ownPool = pool, true
	}
	b.pg = p // closed by Close if what follows fails
	st, err := postgres.Open(ctx, postgres.Config{Pool: p.pool, Schema: pc.Schema, Logger: b.wlog})
	if err != nil {
		return nil, err
	}
	p.journal = st
	state, err := pgstate.Open(ctx, p.pool, pc.Schema, b.cfg.LogSize, b.cfg.RejectedSize)
	if err != nil {
		return nil, err
	}
	p.state = state
	st.SetFence(p.fence)
	b.logs = state.Log(func(string) int64 { return -1 })
	b.rejected = state.Rejected(func(string) int64 { return -1 })
	b.deliveryLogs = state.Log(p.token)
	b.deliveryRejected = state.Rejected(p.token)
	b.store = pgIntegrations{p}
	b.cfg.Storage = st
	return p, nil
}

// token is this replica's fencing token for integration ref: 0 when it
// holds no lease of it (its writes are then refused when another does).
func (p *pgBackend) token(ref string) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.held[ref]
}

func (p *pgBackend) holds(ref string) bool { return p.token(ref) != 0 }

// fence is the lease a journal group's cursor is saved under: the
// integration's, for its own group and for its replays'.
func (p *pgBackend) fence(group string) (string, int64) {
	ref := pgstate.LeaseOf(group)
	return ref, p.token(ref)
}

// checkSink builds and closes the sink of an integration this replica
// does not deliver (another does, or will once it takes the lease), so
// that Create, Update and Start refuse a sink that cannot start, as on one
// process.
func (p *pgBackend) checkSink(in Integration, chain *middleware.Chain) error {
	d, err := p.b.openDelivery(in, chain)
	if err != nil {
		return err
	}
	return d.sink.Close()
}

// freshCursor reads r's cursor from the database when another replica
// may be moving it, so that every replica answers the same.
func (p *pgBackend) freshCursor(r *runner) error {
	b := p.b
	b.mu.Lock()
	live, ref := r.live != nil, r.in.Ref()
	b.mu.Unlock()
	if live {
		return nil
	}
	return b.journal.ReloadCursor(Topic, ref)
}

// freshRef is freshCursor by ref, for the journal view, which answers no
// error: a cursor that cannot be read is the one read last.
func (p *pgBackend) freshRef(ref string) {
	b := p.b
	b.mu.Lock()
	r := b.runners[ref]
	b.mu.Unlock()
	if r == nil {
		_ = b.journal.ReloadCursor(Topic, ref)
		return
	}
	_ = p.freshCursor(r)
}

// pgIntegrations is the integration store in the database: one row per
// integration, a change written alone.
type pgIntegrations struct{ p *pgBackend }

func (s pgIntegrations) load(reg *sinks.Registry) ([]Integration, []error, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := s.p.state.LoadIntegrations(ctx)
	if err != nil {
		return nil, nil, err
	}
	list, unreadable := decodeRows(reg, rows)
	return list, unreadable, nil
}

func decodeRows(reg *sinks.Registry, rows []pgstate.Integration) ([]Integration, []error) {
	var list []Integration
	var unreadable []error
	for _, row := range rows {
		in, p := decodeIntegration(reg, row.Doc)
		if err := p.Err(); err != nil {
			unreadable = append(unreadable, fmt.Errorf("sinkbus: integration %s: %w: %w", quoteID(row.Ref), ErrInvalid, err))
			continue
		}
		list = append(list, in)
	}
	return list, unreadable
}

func (s pgIntegrations) save(_ []Integration, ref string, in *Integration) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Before and after: a sync whose read overlaps the write sees either.
	s.p.saving(ref)
	defer s.p.saving(ref)
	if in == nil {
		s.p.setVersion(ref, 0)
		return s.p.state.Delete(ctx, ref)
	}
	doc, err := json.Marshal(*in)
	if err != nil {
		return err
	}
	// A change aborts the integration's replays, as on one process, even
	// when no replica runs them now.
	aborted := fmt.Errorf("%w: the integration changed before every event of the range was settled", replay.ErrAborted)
	v, err := s.p.state.Put(ctx, pgstate.Integration{Ref: ref, Doc: doc, Version: s.p.version(ref)}, outcomeOf(aborted))
	if errors.Is(err, pgstate.ErrStale) {
		return fmt.Errorf("%w: %w", errStale, err)
	}
	if err == nil {
		s.p.setVersion(ref, v)
	}
	return err
}

// saving counts a write of ref, before and after it.
func (p *pgBackend) saving(ref string) {
	p.mu.Lock()
	p.saves[ref]++
	p.mu.Unlock()
}

func (p *pgBackend) version(ref string) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.versions[ref]
}

// setVersion records the version of ref's row; 0 forgets it.
func (p *pgBackend) setVersion(ref string, v int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if v == 0 {
		delete(p.versions, ref)
	} else {
		p.versions[ref] = v
	}
}

// claim writes in, stopped, under its ref unless a row holds it: the
// replica that claims a ref creates it, the other answers ErrExists and
// touches neither its cursor nor its log. Stopped until the creation is
// saved, so that no replica delivers what may yet fail.
func (s pgIntegrations) claim(in Integration) (func(), error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	in.Status = Stopped
	doc, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	ref := in.Ref()
	ok, err := s.p.state.Claim(ctx, pgstate.Integration{Ref: ref, Doc: doc})
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrExists, quoteID(ref))
	}
	s.p.setVersion(ref, 1) // a claimed row's first
	return func() {
		if err := s.save(nil, ref, nil); err != nil {
			s.p.b.logErr("Cannot remove what a failed creation claimed", err, ref)
		}
	}, nil
}

// keepAside has nothing to do: the rows that cannot be read stay as they
// are (only a change of their integration replaces them).
func (pgIntegrations) keepAside() (string, error) { return "", nil }

// run is the replica's share of the work, from Run to Close: it says it is
// alive, applies the changes other replicas made, and takes, renews and
// gives up leases, starting and stopping integrations to match.
func (p *pgBackend) run(ctx context.Context) {
	ctx, p.cancel = context.WithCancel(ctx)
	p.done = make(chan struct{})
	listening := make(chan struct{})
	go func() {
		defer close(listening)
		p.listen(ctx)
	}()
	go func() {
		defer close(p.done)
		defer func() { <-listening }()
		ttl := p.cfg.LeaseTTL
		tick := time.NewTicker(ttl / 5)
		defer tick.Stop()
		lastRenew := time.Now()
		for {
			p.step(ctx, &lastRenew)
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			case <-p.kick:
			}
		}
	}()
}

// wake has the loop run a step now.
func (p *pgBackend) wake() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// listen wakes the loop on every notification on the bus's channel: a
// change of an integration through another replica.
func (p *pgBackend) listen(ctx context.Context) {
	l := &pgxlisten.Listener{
		Connect: func(ctx context.Context) (*pgx.Conn, error) {
			cfg := p.pool.Config().ConnConfig.Copy()
			cfg.RuntimeParams["application_name"] = "sinkbus bus listener"
			return pgx.ConnectConfig(ctx, cfg)
		},
		LogError: func(_ context.Context, err error) {
			if ctx.Err() == nil {
				p.b.cfg.Logger.Warn("Integration change notifications interrupted; polling meanwhile", "error", err)
			}
		},
		ReconnectDelay: time.Second,
	}
	l.Handle(p.state.Channel(), pgxlisten.HandlerFunc(func(context.Context, *pgconn.Notification, *pgx.Conn) error {
		p.wake()
		return nil
	}))
	_ = l.Listen(ctx)
}

// step runs one round; lastRenew is when the last renewal that succeeded
// was sent.
func (p *pgBackend) step(ctx context.Context, lastRenew *time.Time) {
	b := p.b
	ttl := p.cfg.LeaseTTL
	cctx, cancel := context.WithTimeout(ctx, ttl/5)
	defer cancel()

	// Rows expire at four fifths of the lease: with a round every fifth,
	// the others take over within LeaseTTL of the last renewal.
	rows := ttl * 4 / 5
	members, err := p.journal.Heartbeat(cctx, p.replica, rows)
	if err == nil {
		err = p.sync(cctx)
	}
	var held map[string]int64
	sent := time.Now()
	if err == nil {
		held, err = p.journal.RenewLeases(cctx, p.replica, p.heldRefs(), rows)
	}
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		b.cfg.Logger.Error("Cannot reach PostgreSQL to renew the leases", "error", err)
		p.unreachable = true
		// Deliveries stop before the lease could be taken over: at two
		// fifths, so that attempts under way end before the rows expire
		// at four.
		if time.Since(*lastRenew) > ttl*2/5 {
			p.dropAll("the database cannot be reached to renew the lease")
		}
		return
	}
	p.mu.Lock()
	var lost []string
	for ref := range p.held {
		if _, ok := held[ref]; !ok {
			lost = append(lost, ref)
		}
	}
	p.held = held // before sure moves: no attempt of a lost one starts
	p.mu.Unlock()
	if p.unreachable {
		p.unreachable = false
		b.cfg.Logger.Info("PostgreSQL reachable again; delivery resumes under renewed leases")
	}
	*lastRenew = sent
	p.sure.Store(sent.Add(ttl * 2 / 5).Sub(p.base).Nanoseconds())
	for _, ref := range lost {
		p.stopRef(ref, "its lease expired; another replica may deliver it")
	}
	if time.Since(sent) > ttl*2/5 {
		// Renewed too late to be sure no other replica took over meanwhile:
		// the next step knows.
		return
	}

	want := p.assign(members)
	for _, ref := range p.heldRefs() {
		if !want[ref] {
			p.release(ctx, ref, "the integrations are spread across the replicas again")
		}
	}
	for ref := range want {
		if p.holds(ref) {
			p.ensureStarted(ref)
			continue
		}
		token, err := p.journal.AcquireLease(cctx, ref, p.replica, rows)
		if err != nil {
			if !errors.Is(err, postgres.ErrLeaseHeld) && ctx.Err() == nil {
				b.logErr("Cannot take the lease of an integration", err, ref)
			}
			continue
		}
		p.mu.Lock()
		p.held[ref] = token
		p.mu.Unlock()
		if err := b.journal.ReloadCursor(Topic, ref); err != nil {
			b.logErr("Cannot read the cursor of an integration taken over", err, ref)
			p.release(ctx, ref, "its cursor cannot be read")
			continue
		}
		p.ensureStarted(ref)
	}
	p.resumeReplays(cctx)
	p.serve(cctx)
}

func (p *pgBackend) heldRefs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Collect(maps.Keys(p.held))
}

// assign returns the running integrations this replica is to deliver:
// balanced across the members (at most one more than another), by
// rendezvous hashing with bounded load, so that a member joining or
// leaving moves few integrations.
func (p *pgBackend) assign(members []string) map[string]bool {
	b := p.b
	b.mu.Lock()
	var refs []string
	for ref, r := range b.runners {
		if r.ready && !r.gone && r.in.Status == Running {
			refs = append(refs, ref)
		}
	}
	b.mu.Unlock()
	want := make(map[string]bool)
	if len(members) == 0 {
		return want
	}
	sort.Strings(refs)
	// Every member has room for n/m integrations, the first n%m (in name
	// order) for one more.
	room := make(map[string]int, len(members))
	for i, m := range members {
		room[m] = len(refs) / len(members)
		if i < len(refs)%len(members) {
			room[m]++
		}
	}
	// The pairs of highest hash first: an integration goes to the first
	// member with room in that order, so a member joining takes mostly
	// what now hashes highest to it.
	type pair struct {
		ref, member string
		score       uint64
	}
	pairs := make([]pair, 0, len(refs)*len(members))
	for _, ref := range refs {
		for _, m := range members {
			pairs = append(pairs, pair{ref, m, rendezvous(m, ref)})
		}
	}
	sort.Slice(pairs, func(i, j int) bool { return pairs[i].score > pairs[j].score })
	load := make(map[string]int, len(members))
	placed := make(map[string]bool, len(refs))
	for _, pr := range pairs {
		if placed[pr.ref] || load[pr.member] >= room[pr.member] {
			continue
		}
		placed[pr.ref] = true
		load[pr.member]++
		if pr.member == p.replica {
			want[pr.ref] = true
		}
	}
	return want
}

func rendezvous(member, ref string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(member + "\x00" + ref))
	return h.Sum64()
}

// ensureStarted starts ref here when it is to run and does not yet.
func (p *pgBackend) ensureStarted(ref string) {
	if r := p.runner(ref); r != nil {
		p.b.startSaved(r)
	}
}

// runner returns the runner of ref, nil when there is none.
func (p *pgBackend) runner(ref string) *runner {
	p.b.mu.Lock()
	defer p.b.mu.Unlock()
	return p.b.runners[ref]
}

// stopRef stops delivering ref here (its lease is gone or going).
func (p *pgBackend) stopRef(ref, why string) {
	b := p.b
	r := p.runner(ref)
	if r == nil {
		return
	}
	r.op.Lock()
	defer r.op.Unlock()
	b.mu.Lock()
	d := r.live
	b.mu.Unlock()
	if d == nil {
		return
	}
	d.handover.Store(true) // its replays go on where it goes
	b.cfg.Logger.Info("Integration no longer delivered by this replica", logging.IntegrationID, ref, "reason", why)
	if err := r.stop(); err != nil {
		b.logErr("Stopping integration", err, ref)
	}
}

// release stops ref here, then gives its lease up, so that its cursor is
// saved before another replica reads it.
func (p *pgBackend) release(ctx context.Context, ref, why string) {
	p.stopRef(ref, why)
	// Saved under the lease still held: the next holder starts where this
	// one stopped, its replays too.
	if p.holds(ref) {
		if err := p.b.journal.Flush(); err != nil && !errors.Is(err, replay.ErrFenced) {
			p.b.logErr("Cannot save the cursors before giving up a lease", err, ref)
		}
	}
	p.mu.Lock()
	token := p.held[ref]
	delete(p.held, ref)
	p.mu.Unlock()
	if token == 0 {
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.LeaseTTL/5)
	defer cancel()
	if err := p.journal.ReleaseLease(cctx, ref, token); err != nil {
		p.b.logErr("Cannot give up a lease (it expires)", err, ref)
	}
}

// dropAll stops every integration delivered here and forgets the leases:
// this replica can no longer be sure it holds them.
func (p *pgBackend) dropAll(why string) {
	for _, ref := range p.heldRefs() {
		p.stopRef(ref, why)
	}
	p.mu.Lock()
	p.held = make(map[string]int64)
	p.mu.Unlock()
}

// exclusive runs fn while no other replica runs an exclusive fn of the
// same name, on this replica's integrations brought to what the database
// holds first: what one replica did before is seen by the next.
func (p *pgBackend) exclusive(ctx context.Context, name string, fn func() error) error {
	return p.state.Exclusive(ctx, name, func() error {
		if err := p.sync(ctx); err != nil {
			return err
		}
		return fn()
	})
}

// sync makes this replica's integrations those the database holds: what
// other replicas created, changed or deleted.
func (p *pgBackend) sync(ctx context.Context) error {
	p.syncMu.Lock() // the loop's rounds and exclusive's may overlap
	defer p.syncMu.Unlock()
	b := p.b
	p.mu.Lock()
	gen := maps.Clone(p.saves)
	p.mu.Unlock()
	rows, err := p.state.LoadIntegrations(ctx)
	if err != nil {
		return err
	}
	// The next round syncs what this replica wrote meanwhile.
	staleRef := func(ref string) func() bool {
		return func() bool {
			p.mu.Lock()
			defer p.mu.Unlock()
			return p.saves[ref] != gen[ref]
		}
	}
	versions := make(map[string]int64, len(rows))
	for _, row := range rows {
		versions[row.Ref] = row.Version
	}
	list, _ := decodeRows(b.cfg.Sinks, rows) // what cannot be read here is left as it is
	saved := make(map[string]Integration, len(list))
	for _, in := range list {
		saved[in.Ref()] = in
	}
	exists := make(map[string]bool, len(rows))
	for _, row := range rows {
		exists[row.Ref] = true
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	gone := make(map[string]*runner)
	for ref, r := range b.runners {
		if !exists[ref] && r.persisted() {
			gone[ref] = r
		}
	}
	b.mu.Unlock()
	for ref, r := range gone {
		p.forget(r, staleRef(ref))
	}
	for ref, in := range saved {
		if r := p.runner(ref); r == nil {
			p.add(in, versions[ref])
		} else {
			p.apply(r, in, versions[ref], staleRef(ref))
		}
	}
	return nil
}

// add registers an integration another replica created, at version.
func (p *pgBackend) add(in Integration, version int64) {
	b := p.b
	ref := in.Ref()
	f, chain, err := b.compileSaved(in)
	if err != nil {
		b.logErr("An integration created by another replica cannot be taken", err, ref)
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.runners[ref] == nil && !b.closed {
		b.runners[ref] = &runner{b: b, in: in, filter: f, chain: chain, ready: true}
		p.setVersion(ref, version)
	}
}

// apply brings r to in at version, as another replica changed it. The
// version moves with r.in, under r's op: a change made here is written
// over the version of what it was made on.
func (p *pgBackend) apply(r *runner, in Integration, version int64, stale func() bool) {
	b := p.b
	if err := r.op.lockContext(context.Background()); err != nil {
		return
	}
	defer r.op.Unlock()
	ref := in.Ref()
	if stale() {
		return
	}
	b.mu.Lock()
	persisted := r.persisted()
	same := persisted && sameRecord(r.in, in)
	b.mu.Unlock()
	if !persisted {
		return
	}
	if same {
		p.setVersion(ref, version)
		return
	}
	f, chain, err := b.compileSaved(in)
	if err != nil {
		b.logErr("A change made by another replica cannot be taken", err, ref)
		return
	}
	if err := r.stop(); err != nil {
		b.logErr("Stopping integration for an update made by another replica", err, ref)
	}
	b.mu.Lock()
	r.in, r.filter, r.chain = in, f, chain
	b.mu.Unlock()
	p.setVersion(ref, version)
	if in.Status == Running && p.holds(ref) {
		if err := r.start(); err != nil {
			b.logErr("Cannot start integration", err, ref)
		}
	}
}

// forget removes an integration another replica deleted.
func (p *pgBackend) forget(r *runner, stale func() bool) {
	b := p.b
	r.op.Lock()
	defer r.op.Unlock()
	if stale() {
		return
	}
	if err := r.stop(); err != nil {
		b.logErr("Stopping integration deleted by another replica", err, r.in.Ref())
	}
	b.mu.Lock()
	if r.persisted() {
		r.gone, r.ready = true, false
		if b.runners[r.in.Ref()] == r {
			delete(b.runners, r.in.Ref())
		}
	}
	b.mu.Unlock()
}

// sameRecord reports whether two records of an integration are the same,
// as saved.
func sameRecord(a, b Integration) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}

// close ends the loop and gives every lease up, once the integrations
// have stopped (their cursors saved): the other replicas take them over at
// once.
func (p *pgBackend) close() error {
	p.endCtx()
	if p.journal == nil || p.state == nil || p.b.journal == nil {
		return nil // New failed
	}
	if p.cancel != nil {
		p.cancel()
		<-p.done
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The cursors go first, under the leases: then the leases.
	if err := p.b.journal.Flush(); err != nil && !errors.Is(err, replay.ErrFenced) {
		p.b.logErr("Cannot save the cursors before giving up the leases", err, "")
	}
	err := p.journal.Leave(ctx, p.replica)
	if err == nil {
		// Others take over now rather than at their next tick.
		err = p.state.Notify(ctx, "left "+strings.ReplaceAll(p.replica, "\n", " "))
	}
	return err
}

func (p *pgBackend) closePool() {
	if p.ownPool {
		p.pool.Close()
	}
}

// SharedDedupe is the ingestion webhook's dedupe window kept where every
// replica sees it (bus/ingest uses it on a bus with Config.Postgres): a uid
// reserved by one replica is a duplicate on every other.
type SharedDedupe interface {
	// Reserve reserves uid for the event fingerprinted event, unless a
	// reservation within window holds it: then it returns that one.
	Reserve(ctx context.Context, uid string, event []byte, window time.Duration) (owner bool, prior Reservation, err error)
	// Settle records the outcome of publishing a uid reserved: kept for the
	// window when published, forgotten otherwise (the sender's retry
	// publishes it).
	Settle(ctx context.Context, uid string, published bool, window time.Duration) error
}

// Reservation is a uid reserved before.
type Reservation struct {
	Event     []byte // the fingerprint it was reserved with
	Published bool   // false: being published by another request
}

func (p *pgBackend) dedupe() SharedDedupe { return pgDedupe{p.state} }

func (p *pgBackend) closeJournal() error {
	if p.journal == nil {
		return nil
	}
	return p.journal.Close()
}

type pgDedupe struct{ s *pgstate.Store }

func (d pgDedupe) Reserve(ctx context.Context, uid string, event []byte, window time.Duration) (bool, Reservation, error) {
	owner, prior, err := d.s.Reserve(ctx, uid, event, window)
	return owner, Reservation{Event: prior.Event, Published: prior.Published}, err
}

func (d pgDedupe) Settle(ctx context.Context, uid string, published bool, window time.Duration) error {
	return d.s.Settle(ctx, uid, published, window)
}
