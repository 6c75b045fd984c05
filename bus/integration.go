package bus

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/sinkbus/sinkbus/field"
	"github.com/sinkbus/sinkbus/filter"
	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/netguard"
	"github.com/sinkbus/sinkbus/sinks"
)

// Kind is NewStore's integration lifecycle kind.
type Kind string

const (
	// Permanent integrations deliver until stopped or deleted.
	Permanent Kind = "permanent"
	// Temporary integrations deliver the events published between StartsAt
	// and EndsAt, then stop themselves (a replay by date).
	Temporary Kind = "temporary"
)

// Status is whether an integration delivers.
type Status string

const (
	// Running integrations deliver: from Run on, and at once while the bus
	// runs. Create makes an integration Running unless told otherwise.
	Running Status = "running"
	// Stopped integrations deliver nothing; their cursor waits in the
	// journal, so Start catches up on what they missed (within
	// Config.Retention). Temporary integrations become Stopped when their
	// range is delivered.
	Stopped Status = "stopped"
)

// Integration is one destination for the events that match its filter: the
// integration object of Elastic Path and NewStore.
type Integration struct {
	// ID matches ^[a-z0-9-]+$, 1 to 50 characters, unique within its tenant
	// (two tenants may each have an "erp-sync"). Empty on Create means a
	// generated one.
	ID string
	// Tenant is the tenant the integration belongs to: it receives only the
	// events whose Event.Tenant is exactly this, whatever Observes and Filter
	// say, and only that tenant's view of the integrations
	// (Integrations.Tenant) and the application's see it. Empty means the
	// application's own integration, which receives every tenant's events.
	// A tenant name is 1 to 64 ASCII letters, digits, '.', '_' and '-',
	// starting with a letter or digit (ValidateTenant). It cannot change
	// after creation.
	Tenant      string
	Name        string
	Description string
	// Observes lists event name patterns: exact names, "*" for one segment,
	// "**" for any number of segments, "*" alone for everything. Empty means
	// every event.
	Observes []string
	// Filter narrows Observes by entity, event and payload conditions.
	Filter filter.Conditions
	// Sink is the type-specific configuration: webhook.Config, sqs.Config,
	// stomp.Config, file.Config, s3.Config, a HandlerFunc, or a user type.
	Sink sinks.Config
	// Kind is Permanent when empty.
	Kind Kind
	// StartsAt: where a new integration starts reading (not in the future).
	// Zero means only events published from now on. Required for Temporary.
	StartsAt time.Time
	// EndsAt ends a Temporary integration. Not allowed on Permanent ones.
	EndsAt time.Time
	// Delivery sets the timeout, retry and circuit breaker; zero fields take
	// the defaults.
	Delivery middleware.Settings
	// Concurrency is how many deliveries run at once. Zero means the bus
	// default (8).
	Concurrency int
	// OrderKey, when set, delivers events with the same key in order (one
	// at a time) while other keys go on in parallel: "tenant", "name", or a
	// payload path such as "payload.order_id".
	OrderKey string
	// RateLimit caps how fast events reach the destination, across live
	// delivery, replays and retries of rejected events. Its zero value
	// means no limit.
	RateLimit RateLimit
	// Status is read-only except on Create, where Stopped creates the
	// integration without starting it.
	Status Status
	// UnconfinedPaths lets the sink's paths (a file sink's dir, an s3
	// spool_dir, a STOMP tls.ca_file) lie outside Config.PathRoot, for an
	// application whose own code names them. False, as every integration
	// read from JSON has it (it is never read or written there), confines
	// them: Create and Update refuse a path that leaves the root. An update
	// keeps a path it does not change either way.
	UnconfinedPaths bool
	// Owner is who declared the integration through Integrations.Reconcile
	// (its owner argument); empty for one created otherwise (Create, the
	// management API). Reconcile removes only what its owner declared
	// before and no longer declares. Only Reconcile sets it: Create and
	// Update ignore it.
	Owner string
	// Effective is what the integration runs with, defaults included. The
	// bus sets it on every read (Get, List, and what Create and Update
	// return); it is never saved, and Create and Update ignore it.
	Effective Effective
	// CreatedAt and UpdatedAt are set by the bus.
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Ref is the integration's full name: "<tenant>/<id>" for a tenant's
// integration ("acme/erp-sync"), the id alone for the application's. Ids
// have no '/' and tenant names none, so a ref names one integration. The
// application's view of the integrations (Bus.Integrations) addresses them
// by ref, and the bus keys everything it keeps of an integration by it:
// its cursor in the journal (Bus.Events), its log and rejected events, its
// sink's directory in DataDir, the Observer's and the metrics'
// integration.
func (in Integration) Ref() string { return ref(in.Tenant, in.ID) }

// Type returns the integration type: the sink's Type(), or "" when unset.
func (in Integration) Type() string {
	if in.Sink == nil {
		return ""
	}
	return in.Sink.Type()
}

// Masked returns a copy whose secrets are masked.
func (in Integration) Masked() Integration {
	out := in.clone()
	if out.Sink != nil {
		out.Sink = out.Sink.Masked()
	}
	return out
}

// clone copies in so that editing the copy's observes and filter leaves in
// alone (UpdateFunc hands such a copy out; its configuration is Masked's).
func (in Integration) clone() Integration {
	out := in
	out.Observes = slices.Clone(in.Observes)
	f := &out.Filter
	f.Entities.Include, f.Entities.Exclude = slices.Clone(f.Entities.Include), slices.Clone(f.Entities.Exclude)
	f.Events.Include, f.Events.Exclude = slices.Clone(f.Events.Include), slices.Clone(f.Events.Exclude)
	f.Payload = slices.Clone(f.Payload)
	return out
}

var idPattern = regexp.MustCompile(`^[a-z0-9-]{1,50}$`)

// validate checks in as Create does: every problem, with the JSON field
// names (errors.Is(err, ErrInvalid)). now is the bus clock's time; compiled
// is the filter when valid.
func (in *Integration) validate(reg *sinks.Registry, now time.Time, host *hostRules) (compiled *filter.Filter, err error) {
	f, p := in.problems(reg, now, host)
	if err := p.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return f, nil
}

// problems lists every problem of in; f is the compiled filter when the
// filter is valid.
func (in *Integration) problems(reg *sinks.Registry, now time.Time, host *hostRules) (*filter.Filter, field.Problems) {
	var p field.Problems
	if in.ID != "" && !idPattern.MatchString(in.ID) {
		p.Add("id", "must match ^[a-z0-9-]+$ and be 1 to 50 characters")
	}
	if in.Tenant != "" {
		p.Merge("tenant", ValidateTenant(in.Tenant))
	}
	if len(in.Name) > 255 {
		p.Add("name", "longer than 255 characters")
	}
	// Names and descriptions end up in logs, headers of other systems and
	// terminals: no NUL, no escape sequences.
	if strings.ContainsFunc(in.Name, unicode.IsControl) {
		p.Add("name", "must not contain control characters")
	}
	if strings.ContainsFunc(in.Description, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\t' && r != '\r' }) {
		p.Add("description", "must not contain control characters other than tabs and line breaks")
	}
	f, ferr := filter.Compile(in.Observes, in.Filter)
	if ferr != nil {
		p = append(p, field.Errors(ferr)...)
	}
	switch {
	case in.Sink == nil:
		p.Add("integration_type", "required")
	case !reg.Has(in.Sink.Type()):
		p.Add("integration_type", "unknown type %q (known: %s)", in.Sink.Type(), strings.Join(reg.Names(), ", "))
	default:
		p.Merge("configuration", in.Sink.Validate())
		host.check(&p, in)
	}
	switch in.Kind {
	case "", Permanent:
		if !in.EndsAt.IsZero() {
			p.Add("ends_at", "not allowed for a permanent integration")
		}
	case Temporary:
		if in.StartsAt.IsZero() {
			p.Add("starts_at", "required for a temporary integration")
		}
		if in.EndsAt.IsZero() {
			p.Add("ends_at", "required for a temporary integration")
		} else if !in.StartsAt.IsZero() && !in.EndsAt.After(in.StartsAt) {
			p.Add("ends_at", "must be after starts_at")
		}
	default:
		p.Add("kind", "must be %q or %q", Permanent, Temporary)
	}
	if !in.StartsAt.IsZero() && in.StartsAt.After(now) {
		p.Add("starts_at", "must not be in the future")
	}
	if in.Concurrency < 0 || in.Concurrency > 1024 {
		p.Add("concurrency", "must be between 0 and 1024")
	}
	if err := validOrderKey(in.OrderKey); err != nil {
		p.Add("order_key", "%s", err.Error())
	}
	in.RateLimit.validate(&p, "rate_limit.")
	switch in.Status {
	case "", Running, Stopped:
	default:
		p.Add("status", "must be %q or %q", Running, Stopped)
	}
	ds := in.Delivery
	ds.SetDefaults()
	p.Merge("delivery", ds.Validate())
	return f, p
}

// validOrderKey accepts "tenant", "name", "id" and "payload.<path>".
func validOrderKey(k string) error {
	switch {
	case k == "", k == "tenant", k == "name", k == "id":
		return nil
	case strings.HasPrefix(k, "payload.") && len(k) > len("payload."):
		_, err := filter.NewPath(strings.TrimPrefix(k, "payload."))
		return err
	}
	return fmt.Errorf(`must be "tenant", "name", "id" or "payload.<field path>"`)
}

// hostRules are what a bus asks of an integration beyond its own validity:
// whether its sink may reach private networks and the addresses it names,
// whether its paths stay within the path root, no masks for secrets, and
// what Env it would get. A nil *hostRules checks none of it (saved
// integrations passed the rules when they were created).
type hostRules struct {
	allowPrivateNetworks bool
	dataDir              string
	pathRoot             string
	// current is the configuration an update replaces: paths it names
	// pass unchanged (one the application's code set outside the root
	// survives a rename through JSON). Nil on creation.
	current sinks.Config
	// tenantView: the rules of a tenant's view, which names no path (an
	// integration's own directory is its ref's; within the path root
	// another tenant's is a path like any other).
	tenantView bool
}

// hostRules are the rules of a new integration on this bus.
func (b *Bus) hostRules() *hostRules {
	return &hostRules{allowPrivateNetworks: b.cfg.AllowPrivateNetworks, dataDir: b.cfg.DataDir, pathRoot: b.cfg.PathRoot}
}

// updateRules are the rules of an update of an integration whose
// configuration is current.
func (b *Bus) updateRules(current sinks.Config) *hostRules {
	h := b.hostRules()
	h.current = current
	return h
}

// check adds the problems of in's sink on this bus to p.
func (h *hostRules) check(p *field.Problems, in *Integration) {
	if h == nil {
		return
	}
	*p = append(*p, maskedValues(in.Sink, h.current)...)
	env := sinks.Env{IntegrationID: in.Ref(), DataDir: h.dataDir, PathRoot: h.pathRoot}.Defaults()
	if nw, ok := in.Sink.(sinks.Networked); ok {
		h.checkNetwork(p, nw)
	}
	if pu, ok := in.Sink.(sinks.PathUser); ok {
		switch {
		case h.tenantView:
			h.refusePaths(p, pu)
		case !in.UnconfinedPaths:
			h.checkPaths(p, pu, env)
		}
	}
	if ec, ok := in.Sink.(sinks.EnvChecker); ok {
		p.Merge("configuration", ec.CheckEnv(env))
	}
}

// refusePaths refuses, in a tenant's view, every path but those kept as
// they were (the application set them).
func (h *hostRules) refusePaths(p *field.Problems, pu sinks.PathUser) {
	kept := h.keptPaths()
	for _, t := range pu.Paths() {
		if !kept[t] {
			p.Add("configuration."+t.Field, "not allowed in a tenant's integration: its files go to its own directory")
		}
	}
}

// keptPaths are the paths of the configuration an update replaces.
func (h *hostRules) keptPaths() map[sinks.Target]bool {
	cur, ok := h.current.(sinks.PathUser)
	if !ok {
		return nil
	}
	kept := make(map[sinks.Target]bool)
	for _, t := range cur.Paths() {
		kept[t] = true
	}
	return kept
}

// checkNetwork refuses a request for private networks the application does
// not allow, and a literal internal address the network guard would refuse
// at every delivery.
func (h *hostRules) checkNetwork(p *field.Problems, nw sinks.Networked) {
	asks := nw.UsesPrivateNetworks()
	if asks && !h.allowPrivateNetworks {
		p.Add("configuration.allow_private_networks", "not allowed by this application (bus.Config.AllowPrivateNetworks)")
		return // the addresses it would need follow from that
	}
	if asks {
		return
	}
	for _, t := range nw.Hosts() {
		var blocked *netguard.BlockedError
		if !errors.As(netguard.CheckHost(t.Value), &blocked) {
			continue
		}
		rule := "is a %s address, which the network guard refuses"
		if h.allowPrivateNetworks {
			rule += "; set allow_private_networks to deliver to it"
		} else {
			rule += " (this application does not allow private networks: bus.Config.AllowPrivateNetworks)"
		}
		p.Add("configuration."+t.Field, rule, blocked.Rule)
	}
}

// checkPaths refuses paths that leave the path root.
func (h *hostRules) checkPaths(p *field.Problems, pu sinks.PathUser, env sinks.Env) {
	kept := h.keptPaths()
	for _, t := range pu.Paths() {
		switch {
		case kept[t]:
			continue
		case h.pathRoot == "":
			p.Add("configuration."+t.Field, "not allowed: this application allows no path (bus.Config.PathRoot, or a DataDir)")
			continue
		}
		if err := sinks.Confine(h.pathRoot, env.Path(t.Value)); err != nil {
			p.Add("configuration."+t.Field, "%s", err.Error())
		}
	}
}
