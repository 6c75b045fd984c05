package bus

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sinkbus/sinkbus/field"
	"github.com/sinkbus/sinkbus/internal/logging"
	"github.com/sinkbus/sinkbus/sinks"
)

// Tenant isolation. An integration with a tenant receives only that
// tenant's events, and only that tenant's view of the integrations
// (Integrations.Tenant) and the application's reach it. The bus enforces
// it in three places, each on its own:
//
//   - every consumer's selection passes over another tenant's events
//     before the filter, so the integration's observes and conditions
//     never see them (live delivery, replays and their dry-run counts,
//     temporary integrations), and tenantOnly checks again in front of
//     the delivery chain;
//   - the sink's own Publish is wrapped by a check of the same rule, so a
//     path that forgot the first one still sends nothing it must not;
//   - views find an integration by its ref and check its tenant again.
//
// Event tenants are not validated: an event whose tenant no integration
// can be named with (a space, a '/') reaches the application's
// integrations only, which is what it would reach anyway.

var tenantPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ValidateTenant reports whether name can name a tenant: 1 to 64 ASCII
// letters, digits, '.', '_' and '-', starting with a letter or digit.
// Tenants are compared exactly: "Acme" and "acme" are two tenants. The
// error names no field; callers name theirs (field.Prefix).
func ValidateTenant(name string) error {
	if !tenantPattern.MatchString(name) {
		return field.New("", "must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	return nil
}

// ref is the ref of integration id of tenant ("" for the application).
func ref(tenant, id string) string {
	if tenant == "" {
		return id
	}
	return tenant + "/" + id
}

// splitRef reads a ref: the tenant ("" for the application's) and the id.
// ok is false when r cannot name an integration.
func splitRef(r string) (tenant, id string, ok bool) {
	tenant, id, scoped := strings.Cut(r, "/")
	if !scoped {
		tenant, id = "", r
	} else if ValidateTenant(tenant) != nil {
		return "", "", false
	}
	return tenant, id, idPattern.MatchString(id)
}

// admits reports whether an integration of tenant receives an event of
// eventTenant: the application's (tenant "") every event, a tenant's only
// those of exactly its tenant.
func admits(tenant, eventTenant string) bool {
	return tenant == "" || eventTenant == tenant
}

// tenantOnly acknowledges, unseen, the messages an integration of tenant
// must not receive, before its filter: they are no business of its
// filter, its log or the Observer.
func tenantOnly(tenant string, h message.HandlerFunc) message.HandlerFunc {
	if tenant == "" {
		return h
	}
	return func(msg *message.Message) ([]*message.Message, error) {
		if msg.Metadata.Get(sinks.MetaTenant) != tenant {
			return nil, nil
		}
		return h(msg)
	}
}

// errOtherTenant is the error of the log line of a message that reached
// the sink of another tenant's integration.
var errOtherTenant = errors.New("sinkbus: an event of another tenant reached the sink of a tenant's integration; it was not sent")

// guardSink wraps publish, an integration's sink, so that it sends no
// event tenantOnly would have kept away: the last line, for a path that
// forgot the first. Such an event is not sent and counts as settled, so
// that it is neither retried nor stored among the integration's rejected
// events, where the tenant would read it; the bus's log says so.
func (b *Bus) guardSink(in Integration, publish message.HandlerFunc) message.HandlerFunc {
	if in.Tenant == "" {
		return publish
	}
	tenant, integration := in.Tenant, in.Ref()
	return func(msg *message.Message) ([]*message.Message, error) {
		if !admits(tenant, msg.Metadata.Get(sinks.MetaTenant)) {
			b.cfg.Logger.Error("Event of another tenant not sent", "error", errOtherTenant,
				logging.IntegrationID, integration, logging.EventID, msg.UUID)
			return nil, nil
		}
		return publish(msg)
	}
}

// Tenant returns the view of tenant name's integrations alone, for the
// application to hand to that tenant (bus/access maps an HTTP request to
// it). In it ids are plain ("erp-sync"); List holds only the tenant's
// integrations; Create makes the tenant's (an in.Tenant naming another is
// refused, naming the field "tenant"); another tenant's integration, and
// the application's own, are ErrNotFound, their existence not revealed.
//
// Only the application's view reaches any tenant. A tenant's view asked
// for its own name returns a view of it; asked for another, or for a name
// that is not a valid tenant (ValidateTenant; "" included), it returns a
// view whose every method fails.
func (m *Integrations) Tenant(name string) *Integrations {
	v := &Integrations{b: m.b, tenant: name, err: m.usable()}
	if v.err != nil {
		return v
	}
	if err := ValidateTenant(name); err != nil {
		v.err = fmt.Errorf("%w: %w", ErrInvalid, field.Prefix("tenant", err))
	} else if !m.all && name != m.tenant {
		v.err = fmt.Errorf("%w: a tenant's view reaches no other tenant", ErrNotFound)
	}
	return v
}

// errNoScope is the error of a view that is neither the application's nor
// a tenant's: the zero one, which only a mistake in this package makes.
var errNoScope = errors.New("sinkbus: a view of the integrations without a scope")

// usable reports why the view cannot be used, if it cannot: every method
// asks first.
func (m *Integrations) usable() error {
	switch {
	case m.err != nil:
		return m.err
	case !m.all && m.tenant == "":
		return errNoScope
	}
	return nil
}

// refOf turns id, as the view's user names an integration, into its ref:
// the ref itself in the application's view, a plain id in a tenant's. A
// name that cannot be one of the view's integrations is ErrNotFound.
func (m *Integrations) refOf(id string) (string, error) {
	if err := m.usable(); err != nil {
		return "", err
	}
	if m.all {
		if _, _, ok := splitRef(id); ok {
			return id, nil
		}
	} else if idPattern.MatchString(id) {
		return ref(m.tenant, id), nil
	}
	return "", notFound(id)
}

func notFound(id string) error { return fmt.Errorf("%w: %s", ErrNotFound, quoteID(id)) }

// sees reports whether in belongs to the view.
func (m *Integrations) sees(in Integration) bool { return m.all || in.Tenant == m.tenant }

// lookup returns the runner of integration id, named as in the view, and
// its ref. One being created is not found yet.
func (m *Integrations) lookup(id string) (*runner, string, error) {
	key, err := m.refOf(id)
	if err != nil {
		return nil, "", err
	}
	m.b.mu.Lock()
	defer m.b.mu.Unlock()
	r, err := m.runnerLocked(id, key)
	return r, key, err
}

// runnerLocked returns the runner of ref key (id as the view names it);
// b.mu is held. The runner's tenant is checked again: a view hands out
// none of another tenant's, whatever key led to it.
func (m *Integrations) runnerLocked(id, key string) (*runner, error) {
	r, ok := m.b.runners[key]
	if !ok || !r.ready || !m.sees(r.in) || r.in.Ref() != key {
		return nil, notFound(id)
	}
	return r, nil
}

// rules are the host rules of a new integration in this view: a tenant's
// names no path.
func (m *Integrations) rules() *hostRules {
	h := m.b.hostRules()
	h.tenantView = !m.all
	return h
}

// own makes in the view's: a tenant's view creates its tenant's
// integrations only, and says so of an in.Tenant naming another.
func (m *Integrations) own(in *Integration, p *field.Problems) {
	if m.all {
		return
	}
	if in.Tenant != "" && in.Tenant != m.tenant {
		p.Add("tenant", "must be empty or %q: this view creates that tenant's integrations only", m.tenant)
	}
	in.Tenant = m.tenant
}

// tenantLag counts the events of tenant that integration key has not
// settled, as Journal.Lag counts every event: those from its cursor to the
// head not acknowledged yet, read from the journal.
func (b *Bus) tenantLag(ctx context.Context, tenant, key string) (uint64, error) {
	cur, ok := b.journal.Cursor(Topic, key)
	if !ok {
		return 0, nil
	}
	from := cur.Next
	head := b.journal.Head(Topic)
	st := b.journal.Storage()
	var n uint64
	for from < head {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		recs, err := st.Read(Topic, from, 256)
		if err != nil {
			return 0, err
		}
		if len(recs) == 0 {
			break
		}
		for _, rec := range recs {
			if rec.Offset < head && !cur.Done(rec.Offset) && rec.Metadata[sinks.MetaTenant] == tenant {
				n++
			}
		}
		from = recs[len(recs)-1].Offset + 1
	}
	return n, nil
}
