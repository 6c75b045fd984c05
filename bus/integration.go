package bus

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/sinkbus/sinkbus/field"
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
	if len(in.Name) > 255 {
		p.Add("name", "longer than 255 characters")
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

// integrationJSON is the wire form: Elastic Path's and NewStore's field names.
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

// DecodeIntegration parses an integration from Elastic Path's and NewStore's JSON: sinkbus's own
// form, Elastic Path's (`{"data":{"type":"integration","integration_type":
// "webhook","configuration":{...}}}`, whose read-only "links" and "meta" are
// ignored) or NewStore's (`integration_type` permanent|temporary with
// `callback_url` / `callback_parameters` or `s3_parameters`).
//
// Errors (errors.Is(err, ErrInvalid)) name each field as the body wrote it,
// inside Elastic Path's "data" envelope: "observes[0]", or in NewStore's
// shape "callback_url" and "s3_parameters.bucket". A body that cannot be
// decoded whole is reported with every problem at once: each field that
// cannot be decoded, and what validation finds in the rest.
func DecodeIntegration(reg *sinks.Registry, body []byte) (Integration, error) {
	d := decodeIntegration(reg, body)
	if err := d.err(reg, time.Now(), nil); err != nil {
		return Integration{}, err
	}
	return d.in, nil
}

// decoded is an integration read from JSON, with the problems met on the
// way, named as in sinkbus's own form.
type decoded struct {
	in       Integration
	problems field.Problems
	// sinkFailed: the configuration could not be decoded, so validation's
	// "integration_type: required" would only repeat it.
	sinkFailed bool
	// rename turns a field of sinkbus's form into the body's own name.
	rename func(string) string
}

// err returns nil when the body decoded whole. Otherwise it joins the
// decoding problems with those validation finds in what could be decoded
// (now and host as for validate), every field named as the body
// wrote it.
func (d decoded) err(reg *sinks.Registry, now time.Time, host *hostRules) error {
	if len(d.problems) == 0 {
		return nil
	}
	var decodedBad []string
	for _, e := range d.problems {
		f := e.(*field.Error).Field
		if f == "" {
			return fmt.Errorf("%w: %w", ErrInvalid, d.problems.Err()) // nothing was decoded
		}
		decodedBad = append(decodedBad, f)
	}
	p := d.problems
	_, vp := d.in.problems(reg, now, host)
next:
	for _, e := range vp {
		f := e.(*field.Error).Field
		if f == "integration_type" && d.sinkFailed {
			continue // the decoding problem says it already
		}
		for _, bad := range decodedBad {
			if f == bad || strings.HasPrefix(f, bad+".") || strings.HasPrefix(f, bad+"[") {
				continue next // what could not be decoded is zero: no news
			}
		}
		p = append(p, e)
	}
	return fmt.Errorf("%w: %w", ErrInvalid, renameProblems(dedupe(p), d.rename))
}

// topField is the first name of a field path: "configuration" for
// "configuration.headers.X", "observes" for "observes[2]".
func topField(f string) string {
	if i := strings.IndexAny(f, ".["); i >= 0 {
		return f[:i]
	}
	return f
}

func dedupe(p field.Problems) field.Problems {
	seen := make(map[string]bool, len(p))
	out := p[:0:0]
	for _, e := range p {
		if !seen[e.Error()] {
			seen[e.Error()] = true
			out = append(out, e)
		}
	}
	return out
}

// renameProblems returns the problems joined, each field renamed.
func renameProblems(p field.Problems, rename func(string) string) error {
	if rename == nil {
		return p.Err()
	}
	out := make(field.Problems, 0, len(p))
	for _, e := range field.Errors(p.Err()) {
		fe := e.(*field.Error)
		out = append(out, &field.Error{Field: rename(fe.Field), Rule: fe.Rule})
	}
	return out.Err()
}

// renameErr renames the fields of an ErrInvalid or ErrImmutable error from
// Create or Update as the body wrote them; other errors stay as they are.
func renameErr(err error, rename func(string) string) error {
	if err == nil || rename == nil {
		return err
	}
	for _, sentinel := range []error{ErrInvalid, ErrImmutable} {
		if !errors.Is(err, sentinel) {
			continue
		}
		var p field.Problems
		for _, e := range field.Errors(err) {
			if fe := e.(*field.Error); fe.Field != "" || fe.Rule != sentinel.Error() {
				p = append(p, fe)
			}
		}
		return fmt.Errorf("%w: %w", sentinel, renameProblems(p, rename))
	}
	return err
}

// ignoredFields are read-only fields of Elastic Path's and NewStore's responses that a client
// may send back: Elastic Path's links and meta. "type" is checked.
var ignoredFields = map[string]bool{"links": true, "meta": true}

func decodeIntegration(reg *sinks.Registry, body []byte) decoded {
	var d decoded
	p := &d.problems
	var top map[string]json.RawMessage
	if err := field.DecodeStrict(body, &top); err != nil {
		p.Merge("", err)
		return d
	}
	if top == nil {
		p.Add("", "must be a JSON object")
		return d
	}
	if data, ok := top["data"]; ok { // Elastic Path's envelope
		for k := range top {
			if k != "data" && !ignoredFields[k] {
				p.Add(k, "unknown field")
			}
		}
		top = nil
		if err := field.DecodeStrict(data, &top); err != nil || top == nil {
			p.Add("data", "must be an object")
			return d
		}
	}

	var w integrationJSON
	decodeFields(top, &w, p)
	if w.Type != "" && w.Type != "integration" {
		p.Add("type", "must be \"integration\"")
	}
	typ, cfg := w.IntegrationType, w.Configuration
	params := "" // where NewStore's body holds the configuration
	urlField := ""
	switch typ {
	case string(Permanent), string(Temporary): // NewStore
		if w.Kind != "" && string(w.Kind) != typ {
			p.Add("kind", "contradicts integration_type %q", typ)
		}
		w.Kind = Kind(typ)
		typ, cfg = "", nil
		switch {
		case len(w.S3Parameters) > 0:
			typ, cfg, params = "s3", w.S3Parameters, "s3_parameters"
		case w.CallbackURL != "" || len(w.CallbackParameters) > 0:
			typ, params = "webhook", "callback_parameters"
			cfg = mergeJSON(w.CallbackParameters, "url", w.CallbackURL)
			if w.CallbackURL != "" || !hasKey(w.CallbackParameters, "url") {
				urlField = "callback_url"
			}
		default:
			p.Add("callback_url", "required (or s3_parameters)")
			d.sinkFailed = true
		}
	}
	d.rename = fieldNames(params, urlField)

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
	switch {
	case typ == "" && !d.sinkFailed:
		p.Add("integration_type", "required")
		d.sinkFailed = true
	case typ != "":
		in.Sink, d.sinkFailed = decodeConfig(reg, typ, cfg, p)
	}
	d.in = in
	return d
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
		case !ignoredFields[k]:
			p.Add(k, "unknown field")
		}
	}
}

// decodeConfig decodes a configuration of type typ. The sink's decoder
// stops at the first member it cannot take; that member is set aside and
// the rest decoded again, so that every such member is reported and the
// rest can still be validated. failed means no configuration came out.
func decodeConfig(reg *sinks.Registry, typ string, cfg json.RawMessage, p *field.Problems) (c sinks.Config, failed bool) {
	var obj map[string]json.RawMessage
	if json.Unmarshal(cfg, &obj) != nil {
		obj = nil // not an object: the decoder says so
	}
	for {
		c, err := reg.Decode(typ, cfg)
		switch {
		case err == nil:
			return c, false
		case errors.Is(err, sinks.ErrUnknownType):
			p.Add("integration_type", "unknown type %q (known: %s)", typ, strings.Join(reg.Names(), ", "))
			return nil, true
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
			return nil, true
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

// fieldNames returns how the fields of sinkbus's form are named in
// NewStore's shape, whose configuration is in params, with the URL in
// urlField when it is not there. Nil means the names are the same.
func fieldNames(params, urlField string) func(string) string {
	if params == "" {
		return nil
	}
	return func(f string) string {
		switch {
		case f == "configuration.url" && urlField != "":
			return urlField
		case f == "configuration", strings.HasPrefix(f, "configuration."), strings.HasPrefix(f, "configuration["):
			return params + strings.TrimPrefix(f, "configuration")
		}
		return f
	}
}

func hasKey(obj json.RawMessage, key string) bool {
	var m map[string]json.RawMessage
	_ = json.Unmarshal(obj, &m)
	_, ok := m[key]
	return ok
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

// hostRules are what a bus asks of an integration beyond its own validity:
// whether its sink may reach private networks, and what Env it would get.
// A nil *hostRules checks none of it (DecodeIntegration knows no bus; saved
// integrations passed the rules when they were created).
type hostRules struct {
	allowPrivateNetworks bool
	dataDir              string
}

func (b *Bus) hostRules() *hostRules {
	return &hostRules{allowPrivateNetworks: b.cfg.AllowPrivateNetworks, dataDir: b.cfg.DataDir}
}

// check adds the problems of in's sink on this bus to p.
func (h *hostRules) check(p *field.Problems, in *Integration) {
	if h == nil {
		return
	}
	if !h.allowPrivateNetworks && usesPrivateNetworks(in.Sink) {
		p.Add("configuration.allow_private_networks", "not allowed by this application (bus.Config.AllowPrivateNetworks)")
	}
	if ec, ok := in.Sink.(sinks.EnvChecker); ok {
		p.Merge("configuration", ec.CheckEnv(sinks.Env{IntegrationID: in.ID, DataDir: h.dataDir}.Defaults()))
	}
}

func usesPrivateNetworks(c sinks.Config) bool {
	pn, ok := c.(sinks.PrivateNetworker)
	return ok && pn.UsesPrivateNetworks()
}
