package formats

import (
	"encoding/json"
	"net/url"
	"time"

	"github.com/sinkbus/sinkbus/bus"
)

// Render shows in in shape f as a JSON object. Mask in first (the bus's
// Get and List do) for anything shown to a person. baseURL is where the
// management API is mounted ("https://api.example.com/v2"), for Elastic
// Path's links.self: baseURL, then /integrations/{id} for the application's
// integrations, /tenants/{tenant}/integrations/{id} for a tenant's, which
// the application and that tenant reach alike.
func Render(f Format, in bus.Integration, baseURL string) (map[string]any, error) {
	data, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	obj, err := decodeObject(data)
	if err != nil {
		return nil, err
	}
	switch f {
	case ElasticPath:
		obj["type"] = "integration"
		obj["links"] = object{"self": baseURL + selfPath(in)}
		delete(obj, "created_at")
		delete(obj, "updated_at")
		obj["meta"] = object{"timestamps": object{
			"created_at": millis(in.CreatedAt),
			"updated_at": millis(in.UpdatedAt),
		}}
		return object{"data": obj}, nil
	case NewStore:
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

// selfPath is where the management API (bus/api) serves in, below its
// mount point.
func selfPath(in bus.Integration) string {
	p := "/integrations/" + url.PathEscape(in.ID)
	if in.Tenant != "" {
		p = "/tenants/" + url.PathEscape(in.Tenant) + p
	}
	return p
}
