package bus

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"time"

	"github.com/sinkbus/sinkbus/field"
)

// Reconciled is what Reconcile did, each integration named as the view
// names it (by ref in the application's view), sorted.
type Reconciled struct {
	// Created were declared and did not exist.
	Created []string `json:"created"`
	// Updated were declared by this owner with other settings before, and
	// now have the declared ones.
	Updated []string `json:"updated"`
	// Adopted existed without an owner (created through Create or the
	// management API) and are now the owner's, with the declared settings.
	Adopted []string `json:"adopted"`
	// Removed were this owner's, and are no longer declared.
	Removed []string `json:"removed"`
	// Unchanged were declared, and had the declared settings.
	Unchanged []string `json:"unchanged"`
}

// Changed reports whether Reconcile changed anything.
func (r Reconciled) Changed() bool {
	return len(r.Created)+len(r.Updated)+len(r.Adopted)+len(r.Removed) > 0
}

// String sums r up for a log line: "created 1, updated 0, adopted 0,
// removed 2, unchanged 3".
func (r Reconciled) String() string {
	return fmt.Sprintf("created %d, updated %d, adopted %d, removed %d, unchanged %d",
		len(r.Created), len(r.Updated), len(r.Adopted), len(r.Removed), len(r.Unchanged))
}

// Errors of Reconcile.
var (
	// ErrOwned is matched by the error of Reconcile when a declared
	// integration exists and belongs to another owner: two declarations of
	// one integration would undo each other on every start.
	ErrOwned = errors.New("sinkbus: integration declared by another owner")
)

// ownerPattern is what an owner is named: as a tenant, so that it reads the
// same in logs and JSON.
var ownerPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Reconcile makes the view's integrations that owner declares what declared
// says, as database migrations do for a schema: the application states at
// start-up the integrations it owns (in Go, or read with bus/formats'
// DecodeList from a file) and calls it on every start, from every replica.
//
//   - A declared integration that does not exist is created (Create), with
//     its Status (Stopped creates it without starting it).
//   - One that exists and is owner's is updated when its settings differ
//     from the declared ones (Update: a running integration restarts from
//     its cursor; its log and rejected events stay, and its circuit when
//     the destination is unchanged). The settings are compared as they
//     would be saved, so a declaration that did not change changes nothing:
//     no restart, no log entry. Its status is left alone (Start and Stop
//     belong to whoever operates it), and so is its kind.
//   - One that exists without an owner (created through Create or the
//     management API) is adopted: it becomes owner's, with the declared
//     settings. One of another owner is left as it is, with ErrOwned.
//   - An integration of owner's that declared no longer holds is deleted.
//     No other is: integrations created otherwise, and other owners', are
//     never removed. A declaration is whole within its view: in the
//     application's view it covers the owner's integrations of every
//     tenant, in a tenant's view that tenant's alone.
//
// Every declared integration needs its ID (it is how Reconcile finds it
// again), and in the application's view may name a tenant. Declared is
// validated whole first, each problem naming its field as "[i].field"
// (errors.Is(err, ErrInvalid)); then nothing changes. An in-process handler
// is not declared here: Handle registers it on every start.
//
// Reconcile can run in several goroutines or processes at once on one
// store: it creates only what is absent (a concurrent creation is compared
// as if it had been there), and compares and updates each integration
// while holding it, so that calls declaring the same integrations agree.
// The error joins what could not be done; the rest is done, and reported.
func (m *Integrations) Reconcile(ctx context.Context, owner string, declared []Integration) (Reconciled, error) {
	var res Reconciled
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if err := m.usable(); err != nil {
		return res, err
	}
	names, err := m.checkDeclared(owner, declared)
	if err != nil {
		return res, err
	}
	by := *m
	by.by = fmt.Sprintf("by Reconcile (owner %q)", owner)
	m = &by
	if pg := m.b.pg; pg != nil {
		// Replicas reconcile one at a time, each on what the one before
		// saved: without it both would create what neither saw yet.
		err = pg.exclusive(ctx, "reconcile", func() (err error) {
			res, err = m.reconcile(ctx, owner, names, declared)
			return err
		})
		return res, err
	}
	return m.reconcile(ctx, owner, names, declared)
}

// reconcile is Reconcile once declared is checked.
func (m *Integrations) reconcile(ctx context.Context, owner string, names map[string]bool, declared []Integration) (Reconciled, error) {
	var res Reconciled
	var errs []error
	// What is no longer declared goes first: it makes room within the
	// limits for what is.
	list, err := m.List(ctx)
	if err != nil {
		return res, err
	}
	for _, in := range list {
		name := m.nameOf(in)
		if in.Owner != owner || names[name] {
			continue
		}
		switch err := m.deleteOwned(ctx, name, owner); {
		case err == nil:
			res.Removed = append(res.Removed, name)
		case errors.Is(err, ErrNotFound), errors.Is(err, ErrOwned): // gone, or adopted, meanwhile
		default:
			errs = append(errs, fmt.Errorf("removing %s: %w", quoteID(name), err))
		}
	}
	for _, in := range declared {
		name := m.nameOf(in)
		outcome, err := m.reconcileOne(ctx, owner, name, in)
		if err != nil {
			errs = append(errs, fmt.Errorf("integration %s: %w", quoteID(name), err))
			continue
		}
		*outcome(&res) = append(*outcome(&res), name)
	}
	for _, l := range []*[]string{&res.Created, &res.Updated, &res.Adopted, &res.Removed, &res.Unchanged} {
		sort.Strings(*l)
	}
	return res, errors.Join(errs...)
}

// checkDeclared validates owner and declared as Reconcile does, and returns
// the names of the declared integrations.
func (m *Integrations) checkDeclared(owner string, declared []Integration) (map[string]bool, error) {
	var p field.Problems
	if !ownerPattern.MatchString(owner) {
		p.Add("owner", "must be 1 to 64 ASCII letters, digits, '.', '_' and '-', starting with a letter or digit")
	}
	names := make(map[string]bool, len(declared))
	first := make(map[string]int, len(declared))
	now := m.b.cfg.Clock.Now()
	for i, in := range declared {
		at := fmt.Sprintf("[%d]", i)
		if in.ID == "" {
			p.Add(at+".id", "required: Reconcile finds the integration again by its id")
		}
		if _, ok := in.Sink.(HandlerFunc); ok {
			p.Add(at+".configuration", "an in-process handler is registered with Bus.Handle, not declared")
			continue
		}
		if _, _, err := m.check(in, now); err != nil {
			p = append(p, field.Errors(field.Prefix(at, invalidProblems(err)))...)
		}
		if in.ID == "" {
			continue
		}
		m.own(&in, &field.Problems{}) // the view's tenant, as check saw it
		name := m.nameOf(in)
		if j, ok := first[name]; ok {
			p.Add(at+".id", "declared twice (also at [%d])", j)
			continue
		}
		first[name], names[name] = i, true
	}
	if err := p.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return names, nil
}

// invalidProblems is the problems an ErrInvalid error joins, without
// ErrInvalid itself.
func invalidProblems(err error) error {
	if j, ok := err.(interface{ Unwrap() []error }); ok && errors.Is(err, ErrInvalid) {
		var rest []error
		for _, e := range j.Unwrap() {
			if e != ErrInvalid {
				rest = append(rest, e)
			}
		}
		return errors.Join(rest...)
	}
	return err
}

// nameOf is how the view names in: its ref in the application's view, its
// id in a tenant's.
func (m *Integrations) nameOf(in Integration) string {
	if m.all {
		return in.Ref()
	}
	return in.ID
}

// reconcileTries is how many times Reconcile tries an integration that
// another changes meanwhile.
const reconcileTries = 25

// errUnchanged ends a compare-and-update that finds nothing to change.
var errUnchanged = errors.New("sinkbus: unchanged")

// reconcileOne creates or updates the declared integration in, which the
// view names name, and returns the list of res it belongs in.
func (m *Integrations) reconcileOne(ctx context.Context, owner, name string, in Integration) (func(*Reconciled) *[]string, error) {
	in.Owner = owner
	// A creation or deletion of name in between (another process's, or
	// this one's) makes the other step fail; each try sees what it left.
	// A store that replicas share may take a moment to show this process
	// what another created: the tries last about two seconds.
	var err error
	for try := 0; try < reconcileTries; try++ {
		if try > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(min(time.Duration(try)*10*time.Millisecond, 100*time.Millisecond)):
			}
		}
		if _, _, err = m.lookup(name); errors.Is(err, ErrNotFound) {
			if _, err = m.create(ctx, in); errors.Is(err, ErrExists) {
				continue // created, or still being deleted, by another
			}
			return func(r *Reconciled) *[]string { return &r.Created }, err
		}
		var outcome func(*Reconciled) *[]string
		_, err = m.updateOwned(ctx, name, func(cur Integration) (Integration, error) {
			if cur.Owner != owner && cur.Owner != "" {
				return Integration{}, fmt.Errorf("%w: %s is %q's", ErrOwned, quoteID(name), cur.Owner)
			}
			if cur.Kind == Temporary && cur.Owner == owner && m.b.sameSettings(cur, in) {
				return Integration{}, errUnchanged // which Update would refuse to compare
			}
			next, _, err := m.b.nextIntegration(cur, in, m.rules())
			if err != nil {
				return Integration{}, err
			}
			switch {
			case cur.Owner == "":
				outcome = func(r *Reconciled) *[]string { return &r.Adopted }
			case m.b.sameSettings(cur, next):
				return Integration{}, errUnchanged
			default:
				outcome = func(r *Reconciled) *[]string { return &r.Updated }
			}
			return in, nil
		})
		switch {
		case errors.Is(err, errUnchanged):
			return func(r *Reconciled) *[]string { return &r.Unchanged }, nil
		case errors.Is(err, ErrNotFound):
			continue // deleted meanwhile
		}
		return outcome, err
	}
	return nil, err
}

// deleteOwned deletes the integration the view names name if it is still
// owner's when its turn comes (ErrOwned if not).
func (m *Integrations) deleteOwned(ctx context.Context, name, owner string) error {
	r, key, err := m.lookup(name)
	if err != nil {
		return err
	}
	b := m.b
	_, err = b.change(ctx, r, key, func() (Integration, error) {
		b.mu.Lock()
		cur := r.in.Owner
		b.mu.Unlock()
		if cur != owner {
			return Integration{}, fmt.Errorf("%w: %s is %q's", ErrOwned, quoteID(name), cur)
		}
		return Integration{}, b.deleteLocked(r, key)
	})
	return err
}

// sameSettings reports whether an update from cur to next would change
// nothing that is saved or in force: the settings are compared in their
// saved form, with the defaults in force filled in (a declared Concurrency
// of 0 and a saved 8 on a bus whose default is 8 are the same), and
// without what the bus keeps of its own (status, times).
func (b *Bus) sameSettings(cur, next Integration) bool {
	canon := func(in Integration) ([]byte, error) {
		in.Status, in.CreatedAt, in.UpdatedAt, in.Effective = "", time.Time{}, time.Time{}, Effective{}
		in.StartsAt, in.EndsAt = in.StartsAt.UTC(), in.EndsAt.UTC()
		if in.Kind == "" {
			in.Kind = Permanent
		}
		in.Concurrency = b.concurrency(in)
		in.Delivery.SetDefaults()
		return json.Marshal(in)
	}
	a, err := canon(cur)
	if err != nil {
		return false
	}
	n, err := canon(next)
	return err == nil && bytes.Equal(a, n)
}
