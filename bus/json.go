package bus

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/sinkbus/sinkbus/field"
	"github.com/sinkbus/sinkbus/filter"
	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/sinks"
)

// integrationJSON is sinkbus's own wire form of an integration: what
// MarshalJSON writes and Decode reads, and what DataDir keeps. The vendor
// shapes (Elastic Path's, NewStore's) are bus/formats'.
type integrationJSON struct {
	ID               string             `json:"id,omitempty"`
	Tenant           string             `json:"tenant,omitempty"`
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
	RateLimit        *RateLimit         `json:"rate_limit,omitempty"`
	Status           Status             `json:"status,omitempty"`
	Owner            string             `json:"owner,omitempty"`
	Effective        *Effective         `json:"effective,omitempty"` // written on reads, ignored when read
	CreatedAt        *time.Time         `json:"created_at,omitempty"`
	UpdatedAt        *time.Time         `json:"updated_at,omitempty"`
}

// Decode reads an integration from sinkbus's own JSON form (what
// Integration.MarshalJSON writes) with the bus's sink types. It reports
// every member it cannot decode at once (errors.Is(err, ErrInvalid), each
// problem naming its field) and returns what it could decode all the same,
// so that a caller can validate the rest (Validate). It does not validate
// what decoded whole: Create and Update do. Elastic Path's and NewStore's
// shapes are read by bus/formats.
func (m *Integrations) Decode(data []byte) (Integration, error) {
	if err := m.usable(); err != nil {
		return Integration{}, err
	}
	in, p := decodeIntegration(m.b.cfg.Sinks, data)
	if err := p.Err(); err != nil {
		return in, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return in, nil
}

// Validate reports every problem Create would find in in on this bus and
// in this view (errors.Is(err, ErrInvalid)), without creating anything: its
// fields, its sink's configuration, what this bus allows (private
// networks, a data directory), and, in a tenant's view, another tenant.
func (m *Integrations) Validate(in Integration) error {
	_, _, err := m.check(in, m.b.cfg.Clock.Now())
	return err
}

// decodeIntegration reads sinkbus's own form, member by member: p holds
// every member that could not be decoded, in holds the rest.
func decodeIntegration(reg *sinks.Registry, body []byte) (in Integration, p field.Problems) {
	var top map[string]json.RawMessage
	if err := field.DecodeStrict(body, &top); err != nil {
		p.Merge("", err)
		return in, p
	}
	if top == nil {
		p.Add("", "must be a JSON object")
		return in, p
	}
	var w integrationJSON
	decodeFields(top, &w, &p)
	in = Integration{
		ID: w.ID, Tenant: w.Tenant, Name: w.Name, Description: w.Description, Observes: w.Observes,
		Kind: w.Kind, Concurrency: w.Concurrency, OrderKey: w.OrderKey, Status: w.Status, Owner: w.Owner,
	}
	if w.Enabled != nil && !*w.Enabled {
		in.Status = Stopped
	}
	if w.FilterConditions != nil {
		in.Filter = *w.FilterConditions
	}
	if w.RateLimit != nil {
		in.RateLimit = *w.RateLimit
	}
	if w.StartsAt != nil {
		in.StartsAt = *w.StartsAt
	}
	if w.EndsAt != nil {
		in.EndsAt = *w.EndsAt
	}
	if len(w.Delivery) > 0 && string(w.Delivery) != "null" {
		// Decoded on its own so that its errors keep their field path.
		if err := json.Unmarshal(w.Delivery, &in.Delivery); err != nil {
			p.Merge("delivery", err)
			in.Delivery = middleware.Settings{}
		}
	}
	if w.CreatedAt != nil {
		in.CreatedAt = *w.CreatedAt
	}
	if w.UpdatedAt != nil {
		in.UpdatedAt = *w.UpdatedAt
	}
	if w.IntegrationType == "" {
		p.Add("integration_type", "required")
		return in, p
	}
	in.Sink = decodeConfig(reg, w.IntegrationType, w.Configuration, &p)
	return in, p
}

// decodeFields decodes each member of obj into the field of *v (a struct)
// its json tag names, so that one field that cannot be decoded does not
// hide the problems of the others. Members no field names are unknown.
func decodeFields(obj map[string]json.RawMessage, v any, p *field.Problems) {
	rv := reflect.ValueOf(v).Elem()
	fields := make(map[string]int, rv.NumField())
	for i := range rv.NumField() {
		if name, _, _ := strings.Cut(rv.Type().Field(i).Tag.Get("json"), ","); name != "" && name != "-" {
			fields[name] = i
		}
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		i, ok := fields[k]
		switch {
		case ok && string(obj[k]) == "null": // as if absent
		case ok:
			if err := field.DecodeStrict(obj[k], rv.Field(i).Addr().Interface()); err != nil {
				p.Merge(k, err)
				rv.Field(i).SetZero()
			}
		default:
			p.Add(k, "unknown field")
		}
	}
}

// decodeConfig decodes a configuration of type typ. The sink's decoder
// stops at the first member it cannot take; that member is set aside and
// the rest decoded again, so that every such member is reported and the
// rest can still be validated. It returns nil when no configuration came
// out.
func decodeConfig(reg *sinks.Registry, typ string, cfg json.RawMessage, p *field.Problems) sinks.Config {
	var obj map[string]json.RawMessage
	if json.Unmarshal(cfg, &obj) != nil {
		obj = nil // not an object: the decoder says so
	}
	for {
		c, err := reg.Decode(typ, cfg)
		switch {
		case err == nil:
			return c
		case errors.Is(err, sinks.ErrUnknownType):
			p.Add("integration_type", "unknown type %q (known: %s)", typ, strings.Join(reg.Names(), ", "))
			return nil
		}
		setAside := false
		for _, e := range field.Errors(err) {
			fe := e.(*field.Error)
			if fe.Field != "" || obj == nil {
				p.Merge("configuration", fe)
				if k := topField(fe.Field); obj[k] != nil {
					delete(obj, k)
					setAside = true
				}
				continue
			}
			// The decoder could not say where (a value's own UnmarshalJSON
			// failed): the members that fail alone are the culprits.
			found := false
			for _, k := range culprits(reg, typ, obj) {
				p.Add("configuration."+k, "%s", fe.Rule)
				delete(obj, k)
				setAside, found = true, true
			}
			if !found {
				p.Merge("configuration", fe)
			}
		}
		if !setAside {
			return nil
		}
		cfg, _ = json.Marshal(obj)
	}
}

// culprits returns the members of obj that typ's decoder refuses on their
// own, sorted.
func culprits(reg *sinks.Registry, typ string, obj map[string]json.RawMessage) []string {
	var out []string
	for k, v := range obj {
		alone, _ := json.Marshal(map[string]json.RawMessage{k: v})
		if _, err := reg.Decode(typ, alone); err != nil {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// topField is the first name of a field path: "configuration" for
// "configuration.headers.X", "observes" for "observes[2]".
func topField(f string) string {
	if i := strings.IndexAny(f, ".["); i >= 0 {
		return f[:i]
	}
	return f
}

// MarshalJSON writes the integration in sinkbus's wire form, secrets as they
// are: mask first (Masked) for anything shown to a person.
func (in Integration) MarshalJSON() ([]byte, error) {
	w := integrationJSON{
		ID: in.ID, Tenant: in.Tenant, Name: in.Name, Description: in.Description,
		IntegrationType: in.Type(), Observes: in.Observes,
		Kind: in.Kind, Concurrency: in.Concurrency, OrderKey: in.OrderKey, Status: in.Status, Owner: in.Owner,
	}
	if !in.Effective.isZero() {
		e := in.Effective
		w.Effective = &e
	}
	if w.Kind == "" {
		w.Kind = Permanent
	}
	enabled := in.Status != Stopped
	w.Enabled = &enabled
	if in.RateLimit != (RateLimit{}) {
		rl := in.RateLimit
		w.RateLimit = &rl
	}
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
