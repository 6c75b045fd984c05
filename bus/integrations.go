package bus

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sinkbus/sinkbus/field"
	"github.com/sinkbus/sinkbus/filter"
	"github.com/sinkbus/sinkbus/internal/logging"
	"github.com/sinkbus/sinkbus/internal/textcut"
	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/sinks"
)

// Integrations manages a bus's integrations: the lifecycle of Elastic Path's and NewStore's integrations
// (create, get, list, update, delete, start, stop), their log, rejected
// events and circuit breaker. Every read masks secrets. Changes take effect
// at once, without restarting the bus or disturbing other integrations.
//
// It is a view, within a scope. Bus.Integrations is the application's
// (the administrator's): List holds every integration of every tenant, and
// the methods address one by its ref (Integration.Ref: "acme/erp-sync" for
// tenant acme's, "erp-sync" for the application's own). Tenant limits the
// view to one tenant, addressed by plain id; see there.
//
// Every method refuses a context that is already done (returning its
// error). Changes of one integration (update, delete, start, stop, replay)
// wait for each other; that wait ends with the context, and so does the
// wait for the change itself: when the context ends while an integration
// stops or starts, the method returns the context's error and the change
// completes in the background, so an integration is never left half
// stopped.
type Integrations struct {
	b *Bus
	// all is true in the application's view; otherwise the view is
	// tenant's alone. The zero scope is neither, and usable refuses it: no
	// mistake yields the application's view, nor its own integrations.
	all    bool
	tenant string
	err    error // when set, every method fails with it
	// by says in log entries who creates and updates: "via API" when
	// empty, Reconcile's own otherwise.
	by string
}

// how is what log entries say made a change.
func (m *Integrations) how() string {
	if m.by != "" {
		return m.by
	}
	return "via API"
}

// Integrations returns the application's view of the integrations: every
// tenant's, each addressed by its ref.
func (b *Bus) Integrations() *Integrations { return &Integrations{b: b, all: true} }

// Create validates in, saves it and, unless in.Status is Stopped, starts it.
// Validation reports every problem at once, each naming its field
// (errors.Is(err, ErrInvalid)); so does a sink that cannot be built for a
// reason of its configuration (a file sink without a directory on a bus
// without one). When the integration cannot start, nothing is kept: no
// record, cursor or log.
//
// In.Tenant makes it that tenant's; in a tenant's view it is the view's
// (another is refused). Each tenant, and the application, may have
// Config.MaxIntegrations; the bus as a whole Config.MaxTotalIntegrations
// (ErrLimit).
//
// A new integration receives the events published from now on, or from
// StartsAt. The exception is an in-process handler registered again (Handle
// after a restart) without StartsAt: it resumes from its cursor.
func (m *Integrations) Create(ctx context.Context, in Integration) (Integration, error) {
	in.Owner = "" // Reconcile's
	return m.create(ctx, in)
}

// create is Create, keeping in.Owner.
func (m *Integrations) create(ctx context.Context, in Integration) (Integration, error) {
	if err := ctx.Err(); err != nil {
		return Integration{}, err
	}
	b := m.b
	now := b.cfg.Clock.Now()
	in, f, err := m.check(in, now)
	if err != nil {
		return Integration{}, err
	}
	in = in.clone()
	in.Effective = Effective{}
	if in.Kind == "" {
		in.Kind = Permanent
	}
	if in.Status == "" {
		in.Status = Running
	}
	in.CreatedAt, in.UpdatedAt = now, now

	r := &runner{b: b, in: in, filter: f}
	r.op.Lock()
	defer r.op.Unlock()
	if err := b.reserve(r); err != nil {
		return Integration{}, err
	}
	in = r.in
	out, err := b.create(r, m.how())
	if err != nil {
		b.mu.Lock()
		r.gone = true
		delete(b.runners, in.Ref())
		b.mu.Unlock()
		return Integration{}, err
	}
	return out, nil
}

// check validates in as Create does in this view, and returns it with the
// view's tenant.
func (m *Integrations) check(in Integration, now time.Time) (Integration, *filter.Filter, error) {
	if err := m.usable(); err != nil {
		return in, nil, err
	}
	var p field.Problems
	m.own(&in, &p)
	f, more := in.problems(m.b.cfg.Sinks, now, m.rules())
	if err := append(p, more...).Err(); err != nil {
		return in, nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return in, f, nil
}

// reserve enters r in the bus under its ref (its id generated when empty),
// if its tenant and the bus have room; lookups ignore it until it is
// ready.
func (b *Bus) reserve(r *runner) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	if r.in.ID == "" {
		r.in.ID = b.newID(r.in.Tenant)
	}
	key := r.in.Ref()
	if _, ok := b.runners[key]; ok {
		return fmt.Errorf("%w: %s", ErrExists, quoteID(key))
	}
	if b.countLocked(r.in.Tenant) >= b.cfg.MaxIntegrations {
		whose := "per tenant"
		if r.in.Tenant == "" {
			whose = "for the application"
		}
		return fmt.Errorf("%w: at most %d %s", ErrLimit, b.cfg.MaxIntegrations, whose)
	}
	if len(b.runners) >= b.cfg.MaxTotalIntegrations {
		return fmt.Errorf("%w: at most %d on this bus, all tenants together", ErrLimit, b.cfg.MaxTotalIntegrations)
	}
	b.runners[key] = r
	return nil
}

// countLocked is how many integrations tenant has ("" for the
// application's); b.mu is held.
func (b *Bus) countLocked(tenant string) int {
	n := 0
	for _, r := range b.runners {
		if r.in.Tenant == tenant {
			n++
		}
	}
	return n
}

// create builds, pins, starts and saves the reserved runner r; op is held.
// On error it leaves nothing behind but the reservation. how says in the
// log what created it.
func (b *Bus) create(r *runner, how string) (Integration, error) {
	in := r.in
	chain, err := b.newChain(in)
	if err != nil {
		return Integration{}, err
	}
	b.mu.Lock()
	r.chain = chain
	b.mu.Unlock()
	key := in.Ref()
	release := func() {}
	if _, handler := in.Sink.(HandlerFunc); !handler {
		if release, err = b.store.claim(in); err != nil {
			return Integration{}, err
		}
	}
	resumed, created, err := b.pinCursor(in, how)
	if err != nil {
		release()
		return Integration{}, err
	}
	undo := func() {
		release()
		if resumed {
			return // the handler's own history
		}
		err := errors.Join(b.journal.DeleteCursor(Topic, key), b.logs.Drop(key), b.rejected.Drop(key))
		if err != nil {
			b.logErr("Cannot remove what a failed creation left", err, key)
		}
	}
	if !resumed {
		// What an earlier integration of this ref left (a handler no longer
		// registered) is not this one's.
		if err := errors.Join(b.logs.Drop(key), b.rejected.Drop(key)); err != nil {
			return Integration{}, err
		}
	}
	if in.Status == Running {
		if err := r.start(); err != nil {
			undo()
			return Integration{}, err
		}
	}
	b.mu.Lock()
	r.ready = true
	err = b.saveLocked(r)
	if err != nil {
		r.ready = false
	}
	b.mu.Unlock()
	if err != nil {
		_ = r.stop()
		undo()
		return Integration{}, err
	}
	b.log(key, "integration_created", created)
	if in.Status == Running {
		b.log(key, middleware.ActionIntegrationStarted, "Started on creation.")
	}
	return b.shown(in), nil
}

// pinCursor sets where a new integration starts reading, now, so that the
// events published before Run or before its first delivery are not
// skipped: StartsAt, else the head. An in-process handler registered again
// without StartsAt keeps the cursor it has: resumed reports that. created
// is the reason of the integration_created log entry: it says when the
// journal no longer holds the events from StartsAt on.
func (b *Bus) pinCursor(in Integration, how string) (resumed bool, created string, err error) {
	created = "Created " + how + "."
	if _, ok := in.Sink.(HandlerFunc); ok && in.StartsAt.IsZero() {
		if _, ok := b.journal.Cursor(Topic, in.Ref()); ok {
			return true, created, nil
		}
	}
	start := b.journal.Head(Topic)
	if !in.StartsAt.IsZero() {
		var gone bool
		var at time.Time
		if start, gone, at, err = b.seekHeld(in.StartsAt); err != nil {
			return false, created, err
		}
		if gone {
			from := "with the next event published"
			if !at.IsZero() {
				from = "at " + fmtTime(at) + ", the oldest event it holds"
			}
			created += fmt.Sprintf(" starts_at %s: the journal no longer holds the events published before; the integration starts %s.",
				fmtTime(in.StartsAt), from)
		}
	}
	return false, created, b.journal.SetCursor(Topic, in.Ref(), start)
}

// Get returns an integration, secrets masked.
func (m *Integrations) Get(ctx context.Context, id string) (Integration, error) {
	if err := ctx.Err(); err != nil {
		return Integration{}, err
	}
	key, err := m.refOf(id)
	if err != nil {
		return Integration{}, err
	}
	m.b.mu.Lock()
	defer m.b.mu.Unlock()
	r, err := m.runnerLocked(id, key)
	if err != nil {
		return Integration{}, err
	}
	return m.b.shown(r.in), nil
}

// List returns the view's integrations by ref (by id in a tenant's view),
// secrets masked.
func (m *Integrations) List(ctx context.Context) ([]Integration, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := m.usable(); err != nil {
		return nil, err
	}
	m.b.mu.Lock()
	defer m.b.mu.Unlock()
	var out []Integration
	for _, r := range m.b.runners {
		if r.ready && m.sees(r.in) {
			out = append(out, m.b.shown(r.in))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Ref() < out[j].Ref() })
	if out == nil {
		out = []Integration{}
	}
	return out, nil
}

// Update replaces the mutable fields of integration id with those of in:
// name, description, observes, filter, configuration, delivery settings,
// concurrency and order key. Every one of them is taken from in, zero
// values included (empty Observes means every event), so start from what
// Get returned, or use UpdateFunc to change some fields only. in.Sink is
// required.
//
// The id, tenant, type, kind, StartsAt and EndsAt cannot change
// (ErrImmutable; an empty tenant, zero kind and times mean unchanged), and
// a Temporary integration cannot be updated at all (ErrImmutable), as
// NewStore has it: its range is replayed as it was created; delete it and
// create another. Status, CreatedAt and UpdatedAt are
// the bus's: Start and Stop change the status. A configuration string sent
// back as Get shows it (masked) keeps the stored value at the same place,
// so a client can change one field without knowing the secrets.
//
// A running integration restarts on the new settings from its cursor:
// nothing is skipped. If it cannot start on them, it goes on with the old
// ones and Update returns the error.
func (m *Integrations) Update(ctx context.Context, id string, in Integration) (Integration, error) {
	return m.update(ctx, id, func(Integration) (Integration, error) { return in, nil })
}

// UpdateFunc changes integration id with fn, which edits a copy of it as
// Get returns it (secrets masked), and applies the result as Update does.
// Only what fn changes changes: renaming an integration leaves what it
// observes alone. No other change of the integration comes in between; fn
// must not change it through the bus itself (that would wait for fn).
// An error from fn is returned and changes nothing.
func (m *Integrations) UpdateFunc(ctx context.Context, id string, fn func(in *Integration) error) (Integration, error) {
	return m.update(ctx, id, func(cur Integration) (Integration, error) {
		in := cur.Masked()
		if err := fn(&in); err != nil {
			return Integration{}, err
		}
		return in, nil
	})
}

// update applies change to the integration id, holding its op; the owner
// stays (only Reconcile changes it).
func (m *Integrations) update(ctx context.Context, id string, change func(cur Integration) (Integration, error)) (Integration, error) {
	return m.updateOwned(ctx, id, func(cur Integration) (Integration, error) {
		in, err := change(cur)
		in.Owner = cur.Owner
		return in, err
	})
}

// updateOwned is update, taking the owner change gives.
func (m *Integrations) updateOwned(ctx context.Context, id string, change func(cur Integration) (Integration, error)) (Integration, error) {
	if err := ctx.Err(); err != nil {
		return Integration{}, err
	}
	b := m.b
	r, key, err := m.lookup(id)
	if err != nil {
		return Integration{}, err
	}
	rules := m.rules()
	how := m.how()
	return b.change(ctx, r, key, func() (Integration, error) { return b.updateLocked(r, key, change, rules, how) })
}

// updateLocked is update once it holds r's op; rules are the view's.
func (b *Bus) updateLocked(r *runner, id string, change func(cur Integration) (Integration, error), rules *hostRules, how string) (Integration, error) {
	b.mu.Lock()
	gone, cur := r.gone, r.in.clone()
	b.mu.Unlock()
	if gone {
		return Integration{}, fmt.Errorf("%w: %s", ErrNotFound, quoteID(id))
	}
	in, err := change(cur)
	if err != nil {
		return Integration{}, err
	}
	next, f, err := b.nextIntegration(cur, in, rules)
	if err != nil {
		return Integration{}, err
	}
	chain, err := b.newChain(next)
	if err != nil {
		return Integration{}, err
	}

	type settings struct {
		in     Integration
		filter *filter.Filter
		chain  *middleware.Chain
	}
	set := func(s settings) {
		b.mu.Lock()
		r.in, r.filter, r.chain = s.in, s.filter, s.chain
		b.mu.Unlock()
	}
	b.mu.Lock()
	old := settings{r.in, r.filter, r.chain}
	b.mu.Unlock()
	// revert goes back to the old settings, running again if they were.
	revert := func() {
		if err := r.stop(); err != nil {
			b.logErr("Stopping integration for update", err, id)
		}
		set(old)
		if old.in.Status == Running {
			if err := r.start(); err != nil {
				b.logErr("Cannot restart integration on its old settings", err, id)
			}
		}
	}

	if err := r.stop(); err != nil {
		b.logErr("Stopping integration for update", err, id)
	}
	sameBreaker := sameDestination(cur.Sink, next.Sink) && old.chain.Settings().Breaker == chain.Settings().Breaker
	if sameBreaker {
		chain.Breaker().Continue(old.chain.Breaker())
	}
	set(settings{next, f, chain})
	if next.Status == Running {
		if err := r.start(); err != nil {
			revert()
			return Integration{}, err
		}
	}
	b.mu.Lock()
	err = b.saveLocked(r)
	b.mu.Unlock()
	if err != nil {
		revert()
		return Integration{}, err
	}
	b.log(id, "integration_updated", "Updated "+how+".")
	if !sameBreaker && old.chain.Breaker().State().State != middleware.StateClosed {
		// Only now that the update holds: a revert goes back to this circuit.
		old.chain.Breaker().ResetFor("by an update of the integration")
	}
	return b.shown(next), nil
}

// sameDestination reports whether an update kept the sink's configuration:
// then its circuit breaker's state still describes the destination and
// carries over (a rename does not send waiting events at a destination
// known to be down). Configurations are compared in their JSON form,
// which leaves out callbacks (a func never equals another).
func sameDestination(a, b sinks.Config) bool {
	if a.Type() != b.Type() {
		return false
	}
	ja, err := json.Marshal(a)
	if err != nil {
		return false
	}
	jb, err := json.Marshal(b)
	return err == nil && bytes.Equal(ja, jb)
}

// nextIntegration is cur updated with in, validated as at creation under
// rules (a view's), which it changes to keep what cur names.
func (b *Bus) nextIntegration(cur, in Integration, rules *hostRules) (Integration, *filter.Filter, error) {
	var p field.Problems
	if cur.Kind == Temporary {
		return Integration{}, nil, fmt.Errorf("%w: %w", ErrImmutable, field.New("kind",
			"a temporary integration cannot be updated; delete it and create another"))
	}
	if in.ID != "" && in.ID != cur.ID {
		p.Add("id", "cannot change after creation")
	}
	if in.Tenant != "" && in.Tenant != cur.Tenant {
		p.Add("tenant", "cannot change after creation")
	}
	if in.Sink != nil && in.Sink.Type() != cur.Type() {
		p.Add("integration_type", "cannot change after creation")
	}
	if in.Kind != "" && in.Kind != cur.Kind {
		p.Add("kind", "cannot change after creation")
	}
	if !in.StartsAt.IsZero() && !in.StartsAt.Equal(cur.StartsAt) {
		p.Add("starts_at", "cannot change after creation")
	}
	if !in.EndsAt.IsZero() && !in.EndsAt.Equal(cur.EndsAt) {
		p.Add("ends_at", "cannot change after creation")
	}
	if err := p.Err(); err != nil {
		return Integration{}, nil, fmt.Errorf("%w: %w", ErrImmutable, err)
	}
	if in.Sink == nil {
		return Integration{}, nil, fmt.Errorf("%w: %w", ErrInvalid, field.New("configuration",
			"required: Update replaces every field; start from what Get returns, or use UpdateFunc"))
	}
	next := in.clone()
	next.Effective = Effective{}
	next.ID, next.Tenant, next.Kind, next.StartsAt, next.EndsAt = cur.ID, cur.Tenant, cur.Kind, cur.StartsAt, cur.EndsAt
	next.Status, next.CreatedAt = cur.Status, cur.CreatedAt
	// A configuration read back (masked) keeps the stored secret wherever
	// a masked one was sent back.
	var err error
	if next.Sink, err = unmaskConfig(b.cfg.Sinks, next.Sink, cur.Sink); err != nil {
		return Integration{}, nil, fmt.Errorf("%w: %w", ErrInvalid, field.Prefix("configuration", err))
	}
	now := b.cfg.Clock.Now()
	next.UpdatedAt = now
	// StartsAt is in the past by now; validate as at creation.
	rules.current = cur.Sink
	f, err := next.validate(b.cfg.Sinks, maxTime(now, next.StartsAt), rules)
	if err != nil {
		return Integration{}, nil, err
	}
	return next, f, nil
}

// Delete stops an integration and removes it with its cursor, log and
// rejected events, and what its sink keeps in the data directory
// (sinks.Purger). What the sink could not flush or purge is logged, not
// returned: the integration is gone all the same.
//
// Delete also forgets what an integration that no longer exists left
// behind: the cursor, log and rejected events of an in-process handler
// the application no longer registers (see Bus.Unhandle). It returns
// ErrNotFound when there is nothing of id.
func (m *Integrations) Delete(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	key, err := m.refOf(id)
	if err != nil {
		return err
	}
	b := m.b
	b.mu.Lock()
	r, ok := b.runners[key]
	if !ok {
		defer b.mu.Unlock() // a Create of id waits: it must not lose its new cursor
		return b.forgetLocked(id, key)
	}
	if !m.sees(r.in) {
		b.mu.Unlock()
		return notFound(id)
	}
	b.mu.Unlock()
	_, err = b.change(ctx, r, key, func() (Integration, error) { return Integration{}, b.deleteLocked(r, key) })
	return err
}

// deleteLocked is Delete once it holds r's op.
func (b *Bus) deleteLocked(r *runner, id string) error {
	b.mu.Lock()
	if r.gone || !r.ready {
		b.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrNotFound, quoteID(id))
	}
	b.mu.Unlock()
	if err := r.stop(); err != nil {
		b.logErr("Stopping deleted integration", err, id)
	}
	if pg, ok := r.in.Sink.(sinks.Purger); ok {
		if err := pg.Purge(b.sinkEnv(r.in, redactor(r.in))); err != nil {
			b.logErr("Cannot remove the files the sink of a deleted integration left", err, id)
		}
	}
	// The record goes first. The id stays taken (a Create of it gets
	// ErrExists) until what the integration left is removed too, so that
	// none of what is removed can be a new integration's.
	b.mu.Lock()
	r.gone, r.ready = true, false
	err := b.saveLocked(r)
	b.mu.Unlock()
	err = errors.Join(err, b.journal.DeleteCursor(Topic, id), b.logs.Drop(id), b.rejected.Drop(id))
	b.mu.Lock()
	delete(b.runners, id)
	b.mu.Unlock()
	return err
}

// forgetLocked removes what an integration of ref key (id as the view
// names it) that is not registered left: its cursor, log and rejected
// events. b.mu is held.
func (b *Bus) forgetLocked(id, key string) error {
	if _, ok := b.journal.Cursor(Topic, key); !ok {
		return notFound(id)
	}
	return errors.Join(b.journal.DeleteCursor(Topic, key), b.logs.Drop(key), b.rejected.Drop(key))
}

// Start resumes an integration from its cursor: within the retention window
// it receives every event it missed while stopped. If it cannot start, its
// status stays as it was.
func (m *Integrations) Start(ctx context.Context, id string) (Integration, error) {
	return m.setStatus(ctx, id, Running, "Started via API.")
}

// Stop stops an integration; its cursor stays, so Start catches up. It
// returns what closing the sink failed to do (a flush), but the integration
// is stopped all the same.
func (m *Integrations) Stop(ctx context.Context, id string) (Integration, error) {
	return m.setStatus(ctx, id, Stopped, "Stopped via API.")
}

func (m *Integrations) setStatus(ctx context.Context, id string, s Status, reason string) (Integration, error) {
	if err := ctx.Err(); err != nil {
		return Integration{}, err
	}
	r, key, err := m.lookup(id)
	if err != nil {
		return Integration{}, err
	}
	b := m.b
	return b.change(ctx, r, key, func() (Integration, error) { return b.setStatusLocked(r, key, s, reason) })
}

// setStatusLocked is setStatus once it holds r's op.
func (b *Bus) setStatusLocked(r *runner, id string, s Status, reason string) (Integration, error) {
	var err error
	b.mu.Lock()
	if r.gone {
		b.mu.Unlock()
		return Integration{}, fmt.Errorf("%w: %s", ErrNotFound, quoteID(id))
	}
	// Running but not delivering: its start failed when Run started it.
	if r.in.Status == s && (s == Stopped || r.live != nil || !b.routing) {
		out := b.shown(r.in)
		b.mu.Unlock()
		return out, nil
	}
	b.mu.Unlock()
	var stopErr error
	if s == Running {
		if err := r.start(); err != nil {
			return Integration{}, err
		}
	} else {
		stopErr = r.stop()
	}
	b.mu.Lock()
	changed := r.in.Status != s
	r.in.Status = s
	r.in.UpdatedAt = b.cfg.Clock.Now()
	err = b.saveLocked(r)
	out := b.shown(r.in)
	b.mu.Unlock()
	if err != nil {
		return Integration{}, errors.Join(err, stopErr)
	}
	if changed {
		action := middleware.ActionIntegrationStarted
		if s == Stopped {
			action = middleware.ActionIntegrationStopped
		}
		b.log(id, action, reason)
	}
	return out, stopErr
}

// staleTries bounds how many times a change is made again because other
// replicas kept changing the integration first.
const staleTries = 10

// change runs fn, a change of integration id (runner r), holding r's op.
// It waits for the op, and then for fn, only as long as ctx lets it. When
// ctx ends while fn runs, change returns ctx's error and fn completes in
// the background: a stop, once begun, is never left half done.
//
// On a shared store, fn's write fails (errStale) when another replica
// changed the integration after this one read it; the change is then made
// again on the integration as the database holds it, as one process makes
// one change after the other: none is lost.
func (b *Bus) change(ctx context.Context, r *runner, id string, fn func() (Integration, error)) (Integration, error) {
	for try := 1; ; try++ {
		in, err := b.changeOnce(ctx, r, id, fn)
		if !errors.Is(err, errStale) || b.pg == nil {
			return in, err
		}
		if try == staleTries {
			return in, fmt.Errorf("sinkbus: integration %q: changed through other replicas %d times while this change was made; try again: %w", id, try, err)
		}
		if err := b.pg.sync(ctx); err != nil {
			return Integration{}, err
		}
	}
}

// changeOnce is change, once.
func (b *Bus) changeOnce(ctx context.Context, r *runner, id string, fn func() (Integration, error)) (Integration, error) {
	if ctx.Done() == nil { // nothing to give up on: no goroutine
		r.op.Lock()
		defer r.op.Unlock()
		return fn()
	}
	if err := r.op.lockContext(ctx); err != nil {
		return Integration{}, fmt.Errorf("sinkbus: integration %q: waiting for another change to end: %w", id, err)
	}
	type result struct {
		in  Integration
		err error
	}
	done := make(chan result, 1)
	go func() {
		defer r.op.Unlock()
		in, err := fn()
		done <- result{in, err}
	}()
	select {
	case res := <-done:
		return res.in, res.err
	case <-ctx.Done():
		select {
		case res := <-done:
			return res.in, res.err
		default:
		}
		return Integration{}, fmt.Errorf("sinkbus: integration %q: the change goes on in the background: %w", id, ctx.Err())
	}
}

// completed stops a temporary integration whose range d has delivered.
func (b *Bus) completed(r *runner, d *delivery) {
	r.op.Lock()
	defer r.op.Unlock()
	b.mu.Lock()
	current := r.live == d && !r.gone && !b.closed
	b.mu.Unlock()
	if !current {
		return
	}
	id := r.in.Ref()
	if err := r.stop(); err != nil {
		b.logErr("Stopping completed integration", err, id)
	}
	b.mu.Lock()
	r.in.Status = Stopped
	r.in.UpdatedAt = b.cfg.Clock.Now()
	err := b.saveLocked(r)
	b.mu.Unlock()
	if err != nil {
		b.logErr("Cannot save integrations", err, id)
	}
	b.log(id, middleware.ActionIntegrationCompleted, "Every event up to ends_at was delivered; the integration stopped itself.")
}

// Log returns an integration's log, newest first.
func (m *Integrations) Log(ctx context.Context, id string) ([]middleware.LogEntry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	_, key, err := m.lookup(id)
	if err != nil {
		return nil, err
	}
	return m.b.logs.Entries(key)
}

// Rejected lists an integration's rejected events, newest first.
func (m *Integrations) Rejected(ctx context.Context, id string) ([]middleware.RejectedEvent, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	_, key, err := m.lookup(id)
	if err != nil {
		return nil, err
	}
	return m.b.rejected.List(key)
}

// RejectedEvent returns one rejected event with its payload.
func (m *Integrations) RejectedEvent(ctx context.Context, id, eventID string) (middleware.RejectedEvent, error) {
	if err := ctx.Err(); err != nil {
		return middleware.RejectedEvent{}, err
	}
	_, key, err := m.lookup(id)
	if err != nil {
		return middleware.RejectedEvent{}, err
	}
	return m.b.rejected.Get(key, eventID)
}

// DeleteRejected removes a rejected event.
func (m *Integrations) DeleteRejected(ctx context.Context, id, eventID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	_, key, err := m.lookup(id)
	if err != nil {
		return err
	}
	return m.b.rejected.Delete(key, eventID)
}

// RetryRejected delivers a rejected event once more through the
// integration's sink (timeout, breaker and classification included) and
// removes it from the store when it is delivered. It counts in the
// integration's concurrency and order key as any delivery does: it waits
// for its turn while the circuit is closed, and answers
// middleware.ErrCircuitOpen at once while the circuit is open (unless it
// can probe, with a free slot and its key free). When the attempt fails,
// the stored event keeps the new reason, status code and attempt count
// (and becomes the newest). The integration must run.
func (m *Integrations) RetryRejected(ctx context.Context, id, eventID string) error {
	b := m.b
	ev, err := m.RejectedEvent(ctx, id, eventID)
	if err != nil {
		return err
	}
	r, integrationRef, err := m.lookup(id)
	if err != nil {
		return err
	}
	b.mu.Lock()
	d, chain := r.live, r.chain
	b.mu.Unlock()
	if d == nil {
		if b.forwarding(r) { // another replica delivers it
			return b.pg.forwardRetry(ctx, integrationRef, eventID)
		}
		return fmt.Errorf("%w: %s", ErrNotRunning, quoteID(id))
	}
	msg := ev.Message()
	msg.Metadata.Set(sinks.MetaReplayed, "true")
	msg.SetContext(ctx)
	// Within the integration's concurrency and order, as its other
	// deliveries, whatever the circuit: a manual retry never overlaps a
	// delivery of its key. It waits for its turn while the circuit is
	// closed; an open circuit answers at once.
	key, entered, err := d.gate.tryEnter(msg)
	if err != nil {
		return err
	}
	if !entered {
		if chain.Breaker().State().State != middleware.StateClosed {
			return middleware.ErrCircuitOpen
		}
		if key, err = d.gate.enter(msg); err != nil {
			return err
		}
	}
	err = chain.Deliver(msg, d.publish)
	d.gate.leave(key)
	if err != nil {
		// An open circuit, a closed sink or a cancelled call made no attempt.
		attempted := !errors.Is(err, middleware.ErrCircuitOpen) && !errors.Is(err, sinks.ErrClosed) && ctx.Err() == nil
		if attempted {
			b.retryFailed(integrationRef, ev, err)
		}
		return err
	}
	if err := b.rejected.Delete(integrationRef, eventID); err != nil && !errors.Is(err, middleware.ErrNotFound) {
		return err
	}
	b.logEntry(id, middleware.LogEntry{Action: middleware.ActionRejectedDelivered, EventID: eventID,
		Reason: "Rejected event delivered by a manual retry.", CreatedAt: b.cfg.Clock.Now()})
	return nil
}

// retryFailed records in the rejected store, and in the integration log,
// that a manual retry of ev failed with err.
func (b *Bus) retryFailed(id string, ev middleware.RejectedEvent, err error) {
	ev.Failed(err, b.cfg.Clock.Now())
	ev.Attempts++
	evicted, err := b.rejected.Put(id, ev)
	if err != nil {
		b.cfg.Logger.Error("Cannot record the failed retry of a rejected event", "error", err,
			logging.IntegrationID, id, logging.EventID, ev.EventID)
		return
	}
	for _, e := range middleware.RejectionLog(ev, "Retry failed: "+ev.Reason, evicted) {
		b.logEntry(id, e)
	}
}

// Circuit returns the state of an integration's circuit breaker.
func (m *Integrations) Circuit(ctx context.Context, id string) (middleware.BreakerState, error) {
	if err := ctx.Err(); err != nil {
		return middleware.BreakerState{}, err
	}
	chain, err := m.chainOf(id)
	if err != nil {
		return middleware.BreakerState{}, err
	}
	if st, ok := m.b.forwardCircuit(ctx, m, id, false); ok {
		return st, nil
	}
	return chain.Breaker().State(), nil
}

// ResetCircuit closes an integration's circuit breaker at once.
func (m *Integrations) ResetCircuit(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	chain, err := m.chainOf(id)
	if err != nil {
		return err
	}
	chain.Breaker().Reset()
	m.b.forwardCircuit(ctx, m, id, true)
	return nil
}

func (m *Integrations) chainOf(id string) (*middleware.Chain, error) {
	r, _, err := m.lookup(id)
	if err != nil {
		return nil, err
	}
	m.b.mu.Lock()
	defer m.b.mu.Unlock()
	return r.chain, nil
}

// Lag returns how many events the integration has not settled yet. In a
// tenant's view it counts the tenant's events alone, reading the journal
// from the integration's cursor (the longer the backlog, the longer it
// reads); in the application's view it counts every journal event the
// integration has not passed, each tenant's included, at no cost.
func (m *Integrations) Lag(ctx context.Context, id string) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	r, key, err := m.lookup(id)
	if err != nil {
		return 0, err
	}
	if err := m.b.freshCursor(r); err != nil {
		return 0, err
	}
	if !m.all {
		return m.b.tenantLag(ctx, m.tenant, key)
	}
	return m.b.journal.Lag(Topic, key), nil
}

// newID generates an id that tenant has none of; b.mu is held.
func (b *Bus) newID(tenant string) string {
	for {
		id := "int-" + lowerULID()
		if _, ok := b.runners[ref(tenant, id)]; !ok {
			return id
		}
	}
}

func lowerULID() string { return strings.ToLower(newEventID()) }

// maxQuotedID is as much of an id as an error quotes: ids are at most 50
// characters, and a longer one (from a URL path, say) is cut rather than
// echoed whole.
const maxQuotedID = 64

// quoteID quotes an id for an error message, cut to maxQuotedID bytes.
func quoteID(id string) string { return strconv.Quote(textcut.Cut(id, maxQuotedID)) }

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
