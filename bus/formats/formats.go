// Package formats reads and writes integrations in the JSON shapes of the
// commerce platforms whose integrations sinkbus offers, beside its own:
//
//   - Sinkbus: bus.Integration's own flat object (its MarshalJSON):
//     integration_type is the sink type, kind is permanent or temporary.
//   - ElasticPath: Elastic Path's {"data":{...}} envelope, with
//     "type":"integration", links.self and meta.timestamps.
//   - NewStore: NewStore's object: integration_type is permanent or
//     temporary, the webhook's url is callback_url and its other settings
//     callback_parameters, an s3 configuration is s3_parameters, and status
//     tells whether it runs. Other sink types keep "configuration" and name
//     their type in "sink_type".
//
// Each shape carries an integration's tenant (bus.Integration.Tenant) as
// "tenant"; a tenant's view of the integrations (bus.Integrations.Tenant)
// refuses a body naming another.
//
// The shape of a body is told by its content (Detect). The management API
// (bus/api) speaks these shapes over HTTP; a Go program holding such a body
// calls Create, Update, Patch or Decode itself, and Render to answer in a
// shape. The bus itself knows only its own shape.
//
// Errors name each field as the body wrote it: "data.observes[0]" in Elastic
// Path's envelope, "callback_url" or "s3_parameters.bucket" in NewStore's,
// whether decoding, validation or the sink found the problem. Secrets sent
// back masked (as Render shows them) keep their stored values.
package formats

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/field"
)

// Format is a shape of integrations on the wire.
type Format string

const (
	// Sinkbus is sinkbus's own flat object (bus.Integration's JSON).
	Sinkbus Format = "sinkbus"
	// ElasticPath is Elastic Path's {"data":{...}} envelope.
	ElasticPath Format = "elastic_path"
	// NewStore is NewStore's object, integration_type permanent or temporary.
	NewStore Format = "newstore"
)

// Valid reports whether f is one of the Format constants.
func (f Format) Valid() bool {
	return f == Sinkbus || f == ElasticPath || f == NewStore
}

// Decode reads an integration from body, in any of the three shapes, with
// the sink types of m's bus, and tells the shape. A body that cannot be
// decoded whole is reported with every problem at once
// (errors.Is(err, bus.ErrInvalid)): each member that cannot be decoded, and
// what validation finds in the rest. What decodes whole is not validated:
// Create and Update do that.
func Decode(m *bus.Integrations, body []byte) (bus.Integration, Format, error) {
	in, f, _, err := decode(m, body)
	return in, f, err
}

// Create creates the integration body describes, in any shape, as
// bus.Integrations.Create does.
func Create(ctx context.Context, m *bus.Integrations, body []byte) (bus.Integration, Format, error) {
	in, f, names, err := decode(m, body)
	if err != nil {
		return bus.Integration{}, f, err
	}
	out, err := m.Create(ctx, in)
	return out, f, renameErr(err, names)
}

// Update replaces integration id with what body describes, in any shape,
// as bus.Integrations.Update does: body is the whole integration, typically
// what Render showed with some fields changed. A configuration string sent
// back as it was shown (masked) keeps the stored value, so a client can
// change one field without knowing the secrets.
func Update(ctx context.Context, m *bus.Integrations, id string, body []byte) (bus.Integration, Format, error) {
	in, f, names, err := decode(m, body)
	if err != nil {
		return bus.Integration{}, f, err
	}
	out, err := m.Update(ctx, id, in)
	return out, f, renameErr(err, names)
}

// object is a JSON object decoded for reshaping; numbers stay json.Number.
type object = map[string]any

// invalid is a problem of a body, named as the body wrote it.
func invalid(name, rule string, args ...any) error {
	return fmt.Errorf("%w: %w", bus.ErrInvalid, field.New(name, rule, args...))
}

// decodeObject decodes a JSON object, keeping numbers exact.
func decodeObject(data []byte) (object, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, invalid("", "a JSON object is required")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, invalid("", "invalid JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return nil, invalid("", "unexpected data after the JSON object")
	}
	obj, ok := v.(object)
	if !ok {
		return nil, invalid("", "must be a JSON object")
	}
	return obj, nil
}

// Fields that NewStore's shape adds; their presence marks a NewStore body.
var newStoreFields = []string{"callback_url", "callback_parameters", "s3_parameters", "sink_type"}

// Detect tells the shape of a body: Elastic Path's when its "data" is an
// object, NewStore's when its integration_type is permanent or temporary or
// it has one of NewStore's fields, sinkbus's own otherwise.
func Detect(body map[string]any) Format {
	if _, ok := body["data"].(object); ok {
		return ElasticPath
	}
	if t, _ := body["integration_type"].(string); t == string(bus.Permanent) || t == string(bus.Temporary) {
		return NewStore
	}
	for _, k := range newStoreFields {
		if _, ok := body[k]; ok {
			return NewStore
		}
	}
	return Sinkbus
}

// reshaped is a body turned into sinkbus's own shape.
type reshaped struct {
	obj object // in sinkbus's own shape
	// problems were met reshaping; they are named as the body wrote them.
	problems field.Problems
	// names turns a field of sinkbus's shape into the body's name for it.
	names func(string) string
}

// reshape turns body, of shape f, into sinkbus's own shape. whole is false
// for a patch, which may leave out what it does not change; typ is then the
// integration's sink type.
func reshape(f Format, body object, whole bool, typ string) reshaped {
	switch f {
	case ElasticPath:
		r := reshaped{names: func(f string) string {
			if f == "" {
				return ""
			}
			return "data." + f
		}}
		for k := range body {
			if k != "data" && !readOnlyEnvelope[k] {
				r.problems.Add(k, "unknown field")
			}
		}
		data, _ := body["data"].(object)
		r.obj = ownObject(data, &r.problems, r.names)
		return r
	case NewStore:
		return fromNewStore(body, whole, typ)
	}
	r := reshaped{names: func(f string) string { return f }}
	r.obj = ownObject(body, &r.problems, r.names)
	return r
}

// readOnlyEnvelope are members of Elastic Path's answers that a client may
// send back; they are ignored.
var readOnlyEnvelope = map[string]bool{"links": true, "meta": true}

// ownObject is obj without Elastic Path's read-only members and its
// "type":"integration" marker, which is checked.
func ownObject(obj object, p *field.Problems, names func(string) string) object {
	out := make(object, len(obj))
	for k, v := range obj {
		switch {
		case k == "type":
			if v != "integration" {
				p.Add(names("type"), `must be "integration"`)
			}
		case !readOnlyEnvelope[k]:
			out[k] = v
		}
	}
	return out
}

// fromNewStore turns a NewStore body into sinkbus's shape: integration_type
// is the kind, callback_url and callback_parameters a webhook's
// configuration, s3_parameters an s3 one, sink_type any other type's.
func fromNewStore(body object, whole bool, typ string) reshaped {
	var r reshaped
	out := object{}
	kind, _ := body["integration_type"].(string)
	isKind := kind == string(bus.Permanent) || kind == string(bus.Temporary)
	for k, v := range body {
		switch k {
		case "integration_type":
			if isKind {
				out["kind"] = v
			} else {
				out["integration_type"] = v // sinkbus's own member
			}
		case "callback_url", "callback_parameters", "s3_parameters", "sink_type":
		default:
			out[k] = v
		}
	}
	if t, ok := body["sink_type"]; ok {
		out["integration_type"] = t
	}
	if whole && isKind {
		if k, ok := body["kind"]; ok && k != kind {
			r.problems.Add("kind", "contradicts integration_type %q", kind)
		}
	}
	params, urlField := "", ""
	switch {
	case body["s3_parameters"] != nil:
		params = "s3_parameters"
		out["integration_type"] = "s3"
		out["configuration"] = body["s3_parameters"]
	case body["callback_url"] != nil || body["callback_parameters"] != nil:
		params = "callback_parameters"
		out["integration_type"] = "webhook"
		cfg := object{}
		if p := body["callback_parameters"]; p != nil {
			po, ok := p.(object)
			if !ok {
				r.problems.Add(params, "must be an object")
			}
			for pk, pv := range po {
				cfg[pk] = pv
			}
		}
		if u := body["callback_url"]; u != nil {
			cfg["url"] = u
		}
		if _, ok := cfg["url"]; body["callback_url"] != nil || !ok {
			urlField = "callback_url"
		}
		out["configuration"] = cfg
	case whole && isKind && body["sink_type"] == nil:
		r.problems.Add("callback_url", "required (or s3_parameters)")
	case !whole && typ == "webhook":
		params, urlField = "callback_parameters", "callback_url"
	case !whole && typ == "s3":
		params = "s3_parameters"
	}
	r.obj = out
	r.names = func(f string) string {
		switch {
		case f == "kind" && isKind:
			return "integration_type"
		case f == "integration_type" && body["sink_type"] != nil:
			return "sink_type"
		case f == "configuration.url" && urlField != "":
			return urlField
		case params != "" && (f == "configuration" || strings.HasPrefix(f, "configuration.") || strings.HasPrefix(f, "configuration[")):
			return params + strings.TrimPrefix(f, "configuration")
		}
		return f
	}
	return r
}

// decode reads a whole integration from body; names turns the fields of
// the bus's errors into the body's own.
func decode(m *bus.Integrations, body []byte) (in bus.Integration, f Format, names func(string) string, err error) {
	obj, err := decodeObject(body)
	if err != nil {
		return bus.Integration{}, Sinkbus, nil, err
	}
	f = Detect(obj)
	r := reshape(f, obj, true, "")
	own, err := json.Marshal(r.obj)
	if err != nil {
		return bus.Integration{}, f, nil, err
	}
	in, derr := m.Decode(own)
	if derr == nil && len(r.problems) == 0 {
		return in, f, r.names, nil
	}
	return bus.Integration{}, f, r.names, everyProblem(m, in, r, derr)
}

// everyProblem joins the problems met reshaping and decoding with those
// validation finds in what could be decoded, every field named as the body
// wrote it. A member that could not be decoded is zero: what validation
// says of it (or of the sink type, when there is no sink) is no news.
func everyProblem(m *bus.Integrations, in bus.Integration, r reshaped, decodeErr error) error {
	p := r.problems
	decoded := problemsOf(decodeErr)
	var bad []string
	for _, fe := range decoded {
		if fe.Field == "" {
			return fmt.Errorf("%w: %w", bus.ErrInvalid, errors.Join(append(p, fe)...)) // nothing was decoded
		}
		bad = append(bad, fe.Field)
		p = append(p, &field.Error{Field: r.names(fe.Field), Rule: fe.Rule})
	}
next:
	for _, fe := range problemsOf(m.Validate(in)) {
		if fe.Field == "integration_type" && in.Sink == nil {
			continue
		}
		for _, b := range bad {
			if fe.Field == b || strings.HasPrefix(fe.Field, b+".") || strings.HasPrefix(fe.Field, b+"[") {
				continue next
			}
		}
		p = append(p, &field.Error{Field: r.names(fe.Field), Rule: fe.Rule})
	}
	return fmt.Errorf("%w: %w", bus.ErrInvalid, dedupe(p).Err())
}

// problemsOf lists the field errors of an error from the bus, without the
// sentinels that classify it.
func problemsOf(err error) []*field.Error {
	var out []*field.Error
	for _, e := range field.Errors(err) {
		fe := e.(*field.Error)
		if fe.Field == "" && (fe.Rule == bus.ErrInvalid.Error() || fe.Rule == bus.ErrImmutable.Error()) {
			continue
		}
		out = append(out, fe)
	}
	return out
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

// renameErr names the fields of an ErrInvalid or ErrImmutable error from the
// bus as the body wrote them; other errors stay as they are.
func renameErr(err error, names func(string) string) error {
	if err == nil || names == nil {
		return err
	}
	for _, sentinel := range []error{bus.ErrInvalid, bus.ErrImmutable} {
		if !errors.Is(err, sentinel) {
			continue
		}
		var p field.Problems
		for _, fe := range problemsOf(err) {
			p = append(p, &field.Error{Field: names(fe.Field), Rule: fe.Rule})
		}
		return fmt.Errorf("%w: %w", sentinel, p.Err())
	}
	return err
}
