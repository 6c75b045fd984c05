package bus

import (
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"time"

	"github.com/sinkbus/sinkbus/filter"
	"github.com/sinkbus/sinkbus/middleware"
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
	Running Status = "running"
	Stopped Status = "stopped"
)

// Integration is one destination for the events that match its filter: the
// integration object of the seeds (Elastic Path, NewStore).
type Integration struct {
	// ID matches ^[a-z0-9-]+$, 1 to 50 characters. Empty on Create means a
	// generated one.
	ID          string
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
	// Status is read-only except on Create, where Stopped creates the
	// integration without starting it.
	Status Status
	// CreatedAt and UpdatedAt are set by the bus.
	CreatedAt time.Time
	UpdatedAt time.Time
}

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

func (in Integration) clone() Integration {
	out := in
	out.Observes = append([]string(nil), in.Observes...)
	return out
}

var idPattern = regexp.MustCompile(`^[a-z0-9-]{1,50}$`)

// validate collects every problem of in, with the JSON field names. now is
// the bus clock's time; compiled is the filter when valid.
func (in *Integration) validate(reg *sinks.Registry, now time.Time, allowPrivate bool) (compiled *filter.Filter, err error) {
	var p sinks.Problems
	if in.ID != "" && !idPattern.MatchString(in.ID) {
		p.Add("id", "must match ^[a-z0-9-]+$ and be 1 to 50 characters")
	}
	if len(in.Name) > 255 {
		p.Add("name", "longer than 255 characters")
	}
	f, ferr := filter.Compile(in.Observes, in.Filter)
	if ferr != nil {
		p = append(p, sinks.FieldErrors(ferr)...)
	}
	switch {
	case in.Sink == nil:
		p.Add("integration_type", "required")
	case !reg.Has(in.Sink.Type()):
		p.Add("integration_type", "unknown type %q (known: %s)", in.Sink.Type(), strings.Join(reg.Names(), ", "))
	default:
		p.Merge("configuration", in.Sink.Validate())
		if !allowPrivate && usesPrivateNetworks(in.Sink) {
			p.Add("configuration.allow_private_networks", "not allowed by this application (bus.Config.AllowPrivateNetworks)")
		}
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
	switch in.Status {
	case "", Running, Stopped:
	default:
		p.Add("status", "must be %q or %q", Running, Stopped)
	}
	ds := in.Delivery
	ds.SetDefaults()
	p.Merge("delivery", ds.Validate())
	if err := p.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return f, nil
}

// integrationJSON is the wire form: the seeds' field names.
type integrationJSON struct {
	ID               string             `json:"id,omitempty"`
	Type             string             `json:"type,omitempty"` // Elastic Path's "integration" marker
	Name             string             `json:"name,omitempty"`
	Description      string             `json:"description,omitempty"`
	IntegrationType  string             `json:"integration_type,omitempty"`
	Enabled          *bool              `json:"enabled,omitempty"`
	Observes         []string           `json:"observes,omitempty"`
	FilterConditions *filter.Conditions `json:"filter_conditions,omitempty"`
	Configuration    json.RawMessage    `json:"configuration,omitempty"`
	Kind             Kind               `json:"kind,omitempty"`
	StartsAt         *time.Time         `json:"starts_at,omitempty"`
	EndsAt           *time.Time         `json:"ends_at,omitempty"`
	Delivery         json.RawMessage    `json:"delivery,omitempty"`
	Concurrency      int                `json:"concurrency,omitempty"`
	OrderKey         string             `json:"order_key,omitempty"`
	Status           Status             `json:"status,omitempty"`
	CreatedAt        *time.Time         `json:"created_at,omitempty"`
	UpdatedAt        *time.Time         `json:"updated_at,omitempty"`

	// NewStore's shapes: integration_type permanent|temporary, and the sink
	// configuration in callback_parameters / s3_parameters.
	CallbackURL        string          `json:"callback_url,omitempty"`
	CallbackParameters json.RawMessage `json:"callback_parameters,omitempty"`
	S3Parameters       json.RawMessage `json:"s3_parameters,omitempty"`
}

// DecodeIntegration parses an integration from the seeds' JSON: sinkbus's own
// form, Elastic Path's (`{"data":{"type":"integration","integration_type":
// "webhook","configuration":{...}}}`) or NewStore's (`integration_type`
// permanent|temporary with `callback_url` / `callback_parameters` or
// `s3_parameters`). Errors name the JSON field.
func DecodeIntegration(reg *sinks.Registry, body []byte) (Integration, error) {
	var wrapped struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &wrapped); err == nil && len(wrapped.Data) > 0 && wrapped.Data[0] == '{' {
		body = wrapped.Data
	}
	var w integrationJSON
	if err := sinks.DecodeStrict(body, &w); err != nil {
		return Integration{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	var p sinks.Problems
	if w.Type != "" && w.Type != "integration" {
		p.Add("type", "must be \"integration\"")
	}
	typ, cfg := w.IntegrationType, w.Configuration
	switch typ {
	case string(Permanent), string(Temporary): // NewStore
		if w.Kind != "" && string(w.Kind) != typ {
			p.Add("kind", "contradicts integration_type %q", typ)
		}
		w.Kind = Kind(typ)
		typ, cfg = "", nil
		switch {
		case len(w.S3Parameters) > 0:
			typ, cfg = "s3", w.S3Parameters
		case w.CallbackURL != "" || len(w.CallbackParameters) > 0:
			typ = "webhook"
			cfg = mergeJSON(w.CallbackParameters, "url", w.CallbackURL)
		default:
			p.Add("callback_url", "required (or s3_parameters)")
		}
	}
	in := Integration{
		ID: w.ID, Name: w.Name, Description: w.Description, Observes: w.Observes,
		Kind: w.Kind, Concurrency: w.Concurrency, OrderKey: w.OrderKey, Status: w.Status,
	}
	if w.Enabled != nil && !*w.Enabled {
		in.Status = Stopped
	}
	if w.FilterConditions != nil {
		in.Filter = *w.FilterConditions
	}
	if w.StartsAt != nil {
		in.StartsAt = *w.StartsAt
	}
	if w.EndsAt != nil {
		in.EndsAt = *w.EndsAt
	}
	if len(w.Delivery) > 0 {
		// Decoded on its own so that its errors keep their field path.
		if err := json.Unmarshal(w.Delivery, &in.Delivery); err != nil {
			p.Merge("delivery", err)
		}
	}
	if w.CreatedAt != nil {
		in.CreatedAt = *w.CreatedAt
	}
	if w.UpdatedAt != nil {
		in.UpdatedAt = *w.UpdatedAt
	}
	if typ == "" {
		if len(p) == 0 {
			p.Add("integration_type", "required")
		}
	} else if sc, err := reg.Decode(typ, cfg); err != nil {
		if strings.Contains(err.Error(), sinks.ErrUnknownType.Error()) {
			p.Add("integration_type", "unknown type %q (known: %s)", typ, strings.Join(reg.Names(), ", "))
		} else {
			p.Merge("configuration", err)
		}
	} else {
		in.Sink = sc
	}
	if err := p.Err(); err != nil {
		return Integration{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return in, nil
}

// mergeJSON sets key to value in the JSON object obj when value is not empty.
func mergeJSON(obj json.RawMessage, key, value string) json.RawMessage {
	m := map[string]json.RawMessage{}
	if len(obj) > 0 {
		if err := json.Unmarshal(obj, &m); err != nil {
			return obj // the sink's decoder reports it
		}
	}
	if value != "" {
		v, _ := json.Marshal(value)
		m[key] = v
	}
	out, _ := json.Marshal(m)
	return out
}

// MarshalJSON writes the integration in sinkbus's wire form, secrets as they
// are: mask first (Masked) for anything shown to a person.
func (in Integration) MarshalJSON() ([]byte, error) {
	w := integrationJSON{
		ID: in.ID, Name: in.Name, Description: in.Description,
		IntegrationType: in.Type(), Observes: in.Observes,
		Kind: in.Kind, Concurrency: in.Concurrency, OrderKey: in.OrderKey, Status: in.Status,
	}
	if w.Kind == "" {
		w.Kind = Permanent
	}
	enabled := in.Status != Stopped
	w.Enabled = &enabled
	if !isZeroConditions(in.Filter) {
		f := in.Filter
		w.FilterConditions = &f
	}
	if in.Sink != nil {
		cfg, err := json.Marshal(in.Sink)
		if err != nil {
			return nil, err
		}
		w.Configuration = cfg
	}
	if !in.StartsAt.IsZero() {
		w.StartsAt = &in.StartsAt
	}
	if !in.EndsAt.IsZero() {
		w.EndsAt = &in.EndsAt
	}
	if !reflect.ValueOf(in.Delivery).IsZero() {
		d, err := json.Marshal(in.Delivery)
		if err != nil {
			return nil, err
		}
		w.Delivery = d
	}
	if !in.CreatedAt.IsZero() {
		w.CreatedAt = &in.CreatedAt
	}
	if !in.UpdatedAt.IsZero() {
		w.UpdatedAt = &in.UpdatedAt
	}
	return json.Marshal(w)
}

func isZeroConditions(c filter.Conditions) bool {
	return len(c.Entities.Include)+len(c.Entities.Exclude)+len(c.Events.Include)+len(c.Events.Exclude)+len(c.Payload) == 0
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

func usesPrivateNetworks(c sinks.Config) bool {
	pn, ok := c.(sinks.PrivateNetworker)
	return ok && pn.UsesPrivateNetworks()
}
