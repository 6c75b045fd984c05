package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sinkbus/sinkbus/bus"
)

// Format is a shape of integrations on the wire.
type Format string

const (
	// FormatSinkbus is sinkbus's own flat object (bus.Integration's JSON):
	// integration_type is the sink type, kind is permanent or temporary.
	FormatSinkbus Format = "sinkbus"
	// FormatElasticPath is Elastic Path's {"data":{...}} envelope, with
	// "type":"integration", links.self and meta.timestamps.
	FormatElasticPath Format = "elastic_path"
	// FormatNewStore is NewStore's object: integration_type is permanent or
	// temporary, the webhook's url is callback_url and its other settings
	// callback_parameters, an s3 configuration is s3_parameters, and status
	// tells whether it runs. Other sink types keep "configuration" and name
	// their type in "sink_type".
	FormatNewStore Format = "newstore"
)

func (f Format) valid() bool {
	return f == FormatSinkbus || f == FormatElasticPath || f == FormatNewStore
}

// Fields that NewStore's shape adds; their presence marks a NewStore body.
var newStoreFields = []string{"callback_url", "callback_parameters", "s3_parameters"}

// object is a JSON object decoded for reshaping; numbers stay json.Number.
type object = map[string]any

// decodeObject decodes a JSON object, keeping numbers exact.
func decodeObject(data []byte) (object, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, badRequest("", "a JSON object is required")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, badRequest("", "invalid JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return nil, badRequest("", "unexpected data after the JSON object")
	}
	obj, ok := v.(object)
	if !ok {
		return nil, badRequest("", "must be a JSON object")
	}
	return obj, nil
}

// detect tells the shape of a request body.
func detect(body object) Format {
	if _, ok := body["data"].(object); ok {
		return FormatElasticPath
	}
	if t, _ := body["integration_type"].(string); t == string(bus.Permanent) || t == string(bus.Temporary) {
		return FormatNewStore
	}
	for _, k := range newStoreFields {
		if _, ok := body[k]; ok {
			return FormatNewStore
		}
	}
	return FormatSinkbus
}

// responseFormat is the query's "format" when given, else the request body's
// shape, else the default.
func (h *handler) responseFormat(r *http.Request, body Format) (Format, error) {
	if q := r.URL.Query().Get("format"); q != "" {
		if f := Format(q); f.valid() {
			return f, nil
		}
		return "", badRequest("format", "must be %s, %s or %s", FormatSinkbus, FormatElasticPath, FormatNewStore)
	}
	if body != "" {
		return body, nil
	}
	return h.opts.Format, nil
}

// toSinkbus turns a request body of shape f into sinkbus's own shape.
// Elastic Path's read-only links and meta are dropped, so that an object read
// back (or Elastic Path's own request example, which carries them) is accepted.
func toSinkbus(f Format, body object) (object, error) {
	switch f {
	case FormatElasticPath:
		data, _ := body["data"].(object)
		if t, ok := data["type"]; ok && t != "integration" {
			return nil, badRequest("type", `must be "integration"`) // renamer adds "data."
		}
		delete(data, "type")
		delete(data, "links")
		delete(data, "meta")
		return data, nil
	case FormatNewStore:
		out := object{}
		cfg := object{}
		for k, v := range body {
			switch k {
			case "integration_type":
				out["kind"] = v
			case "callback_parameters", "s3_parameters":
				if v == nil {
					continue
				}
				p, ok := v.(object)
				if !ok {
					return nil, badRequest(k, "must be an object")
				}
				for pk, pv := range p {
					cfg[pk] = pv
				}
			case "callback_url":
				cfg["url"] = v
			case "sink_type":
				out["integration_type"] = v
			default:
				out[k] = v
			}
		}
		if len(cfg) > 0 {
			out["configuration"] = cfg
		}
		return out, nil
	}
	return body, nil
}

// render shows an integration (masked by the bus) in shape f. base is the
// URL the API is mounted at, for Elastic Path's links.
func render(f Format, in bus.Integration, base string) (any, error) {
	data, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	obj, err := decodeObject(data)
	if err != nil {
		return nil, err
	}
	switch f {
	case FormatElasticPath:
		obj["type"] = "integration"
		obj["links"] = object{"self": base + "/integrations/" + url.PathEscape(in.ID)}
		delete(obj, "created_at")
		delete(obj, "updated_at")
		obj["meta"] = object{"timestamps": object{
			"created_at": millis(in.CreatedAt),
			"updated_at": millis(in.UpdatedAt),
		}}
		return object{"data": obj}, nil
	case FormatNewStore:
		obj["integration_type"] = obj["kind"]
		delete(obj, "kind")
		delete(obj, "enabled")
		cfg, _ := obj["configuration"].(object)
		delete(obj, "configuration")
		switch in.Type() {
		case "webhook":
			if u, ok := cfg["url"]; ok {
				obj["callback_url"] = u
				delete(cfg, "url")
			}
			if len(cfg) > 0 {
				obj["callback_parameters"] = cfg
			}
		case "s3":
			obj["s3_parameters"] = cfg
		default:
			obj["sink_type"] = in.Type()
			obj["configuration"] = cfg
		}
	}
	return obj, nil
}

// millis formats a time as Elastic Path does: UTC with milliseconds.
func millis(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// renamer returns how field names are shown to a caller who spoke shape f
// about an integration of sink type typ, so that every path points into the
// body the caller sent: Elastic Path's fields are under "data."; NewStore's
// callers know callback_url, callback_parameters, s3_parameters and
// integration_type.
func renamer(f Format, typ string) func(string) string {
	switch f {
	case FormatElasticPath:
		return func(field string) string {
			if field == "" {
				return ""
			}
			return "data." + field
		}
	case FormatNewStore:
	default:
		return nil
	}
	params := "callback_parameters"
	if typ == "s3" {
		params = "s3_parameters"
	}
	return func(field string) string {
		switch {
		case field == "kind":
			return "integration_type"
		case field == "configuration.url" && params == "callback_parameters":
			return "callback_url"
		case field == "configuration":
			return params
		case strings.HasPrefix(field, "configuration."), strings.HasPrefix(field, "configuration["):
			return params + strings.TrimPrefix(field, "configuration")
		}
		return field
	}
}

// baseURL is where the API is mounted: Options.BaseURL, or the request's
// scheme, host and the prefix http.StripPrefix removed.
func (h *handler) baseURL(r *http.Request) string {
	if h.opts.BaseURL != "" {
		return strings.TrimSuffix(h.opts.BaseURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	prefix := ""
	if u, err := url.ParseRequestURI(r.RequestURI); err == nil && strings.HasSuffix(u.Path, r.URL.Path) {
		prefix = strings.TrimSuffix(strings.TrimSuffix(u.Path, r.URL.Path), "/")
	}
	return scheme + "://" + r.Host + prefix
}

// mergePatch applies an RFC 7396 JSON merge patch: objects merge key by
// key, null removes a key, anything else replaces.
func mergePatch(target, patch any) any {
	p, ok := patch.(object)
	if !ok {
		return patch
	}
	t, ok := target.(object)
	if !ok {
		t = object{}
	}
	for k, v := range p {
		if v == nil {
			delete(t, k)
			continue
		}
		t[k] = mergePatch(t[k], v)
	}
	return t
}
