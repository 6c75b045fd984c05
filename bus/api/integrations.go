package api

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/field"
)

// readBody reads the request body within the size limit; empty is allowed.
func (h *handler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, r, http.StatusRequestEntityTooLarge, "request_too_large",
				"the request body is larger than the limit", nil)
			return nil, false
		}
		writeError(w, r, http.StatusBadRequest, "invalid_request", "cannot read the request body", nil)
		return nil, false
	}
	return data, true
}

// readObject reads a JSON object body and tells its shape.
func (h *handler) readObject(w http.ResponseWriter, r *http.Request) (object, Format, bool) {
	data, ok := h.readBody(w, r)
	if !ok {
		return nil, "", false
	}
	obj, err := decodeObject(data)
	if err != nil {
		h.fail(w, r, err, nil)
		return nil, "", false
	}
	return obj, detect(obj), true
}

// writeIntegration answers in with status, in the shape of the request body
// (or the query's, or the default).
func (h *handler) writeIntegration(w http.ResponseWriter, r *http.Request, status int, body Format, in bus.Integration) {
	f, err := h.responseFormat(r, body)
	if err != nil {
		h.fail(w, r, err, nil)
		return
	}
	out, err := render(f, in, h.baseURL(r))
	if err != nil {
		h.fail(w, r, err, nil)
		return
	}
	writeJSON(w, status, out)
}

func (h *handler) list(w http.ResponseWriter, r *http.Request) {
	f, err := h.responseFormat(r, "")
	if err != nil {
		h.fail(w, r, err, nil)
		return
	}
	list, err := h.b.Integrations().List(r.Context())
	if err != nil {
		h.fail(w, r, err, nil)
		return
	}
	base := h.baseURL(r)
	items := make([]any, len(list))
	for i, in := range list {
		out, err := render(f, in, base)
		if err != nil {
			h.fail(w, r, err, nil)
			return
		}
		if env, ok := out.(object); ok && f == FormatElasticPath {
			out = env["data"]
		}
		items[i] = out
	}
	if f == FormatElasticPath {
		writeJSON(w, http.StatusOK, object{"data": items})
		return
	}
	writeJSON(w, http.StatusOK, object{"integrations": items})
}

// create accepts the three shapes; Elastic Path's and sinkbus's are answered
// 201 Created, NewStore's 200 as its API does.
func (h *handler) create(w http.ResponseWriter, r *http.Request) {
	obj, f, ok := h.readObject(w, r)
	if !ok {
		return
	}
	rename := renamer(f, sinkTypeOf(obj))
	var body any = obj
	if f == FormatElasticPath {
		data, err := toSinkbus(f, obj)
		if err != nil {
			h.fail(w, r, err, rename)
			return
		}
		body = data
	}
	data, err := json.Marshal(body)
	if err != nil {
		h.fail(w, r, err, rename)
		return
	}
	in, err := h.b.Integrations().CreateJSON(r.Context(), data)
	if err != nil {
		h.fail(w, r, err, rename)
		return
	}
	status := http.StatusCreated
	if f == FormatNewStore {
		status = http.StatusOK
	}
	h.writeIntegration(w, r, status, f, in)
}

// sinkTypeOf guesses the sink type a NewStore body configures.
func sinkTypeOf(obj object) string {
	if _, ok := obj["s3_parameters"]; ok {
		return "s3"
	}
	return "webhook"
}

func (h *handler) get(w http.ResponseWriter, r *http.Request) {
	in, err := h.b.Integrations().Get(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err, nil)
		return
	}
	h.writeIntegration(w, r, http.StatusOK, "", in)
}

// immutable are the fields an update may repeat but not change.
var immutable = []string{"id", "integration_type", "kind", "starts_at", "ends_at"}

// readOnly are the fields an update may carry (an object read back) but
// that only the bus sets.
var readOnly = []string{"id", "status", "enabled", "created_at", "updated_at"}

// update merges the body (any shape; RFC 7396 merge patch semantics) onto the
// integration and saves it. Configuration strings sent back masked keep
// their stored values (bus.Integrations.UpdateJSON). "enabled" or "status"
// starts or stops the integration.
func (h *handler) update(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	obj, f, ok := h.readObject(w, r)
	if !ok {
		return
	}
	m := h.b.Integrations()
	cur, err := m.Get(r.Context(), id)
	if err != nil {
		h.fail(w, r, err, nil)
		return
	}
	rename := renamer(f, cur.Type())
	patch, err := toSinkbus(f, obj)
	if err != nil {
		h.fail(w, r, err, rename)
		return
	}
	curJSON, err := json.Marshal(cur)
	if err != nil {
		h.fail(w, r, err, rename)
		return
	}
	current, err := decodeObject(curJSON)
	if err != nil {
		h.fail(w, r, err, rename)
		return
	}
	if err := checkImmutable(current, patch); err != nil {
		h.fail(w, r, err, rename)
		return
	}
	want, err := wantedStatus(patch)
	if err != nil {
		h.fail(w, r, err, rename)
		return
	}
	for _, k := range readOnly {
		delete(patch, k)
		delete(current, k)
	}
	merged, err := json.Marshal(mergePatch(current, patch))
	if err != nil {
		h.fail(w, r, err, rename)
		return
	}
	in, err := m.UpdateJSON(r.Context(), id, merged)
	if err != nil {
		h.fail(w, r, err, rename)
		return
	}
	switch {
	case want == bus.Running && in.Status != bus.Running:
		in, err = m.Start(r.Context(), id)
	case want == bus.Stopped && in.Status != bus.Stopped:
		in, err = m.Stop(r.Context(), id)
	}
	if err != nil {
		h.fail(w, r, err, rename)
		return
	}
	h.writeIntegration(w, r, http.StatusOK, f, in)
}

// checkImmutable refuses a patch that changes (or removes) a field that
// cannot change after creation.
func checkImmutable(current, patch object) error {
	var changed []error
	for _, k := range immutable {
		v, ok := patch[k]
		if !ok || sameValue(k, current[k], v) {
			continue
		}
		changed = append(changed, field.New(k, "cannot change after creation"))
	}
	if len(changed) == 0 {
		return nil
	}
	return errors.Join(append([]error{bus.ErrImmutable}, changed...)...)
}

// sameValue compares two JSON values of field k; times compare as instants.
func sameValue(k string, a, b any) bool {
	if k == "starts_at" || k == "ends_at" {
		return sameTime(a, b)
	}
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(x) == string(y)
}

func sameTime(a, b any) bool {
	parse := func(v any) (time.Time, bool) {
		if v == nil {
			return time.Time{}, true
		}
		s, ok := v.(string)
		if !ok {
			return time.Time{}, false
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		return t, err == nil
	}
	x, ok1 := parse(a)
	y, ok2 := parse(b)
	return ok1 && ok2 && x.Equal(y)
}

// wantedStatus reads "status" or "enabled" from a patch: the status the
// caller asks for, or "" for none.
func wantedStatus(patch object) (bus.Status, error) {
	var want bus.Status
	if v, ok := patch["enabled"]; ok && v != nil {
		b, isBool := v.(bool)
		if !isBool {
			return "", badRequest("enabled", "must be a boolean")
		}
		want = bus.Stopped
		if b {
			want = bus.Running
		}
	}
	if v, ok := patch["status"]; ok && v != nil {
		s, _ := v.(string)
		st := bus.Status(s)
		if st != bus.Running && st != bus.Stopped {
			return "", badRequest("status", "must be %q or %q", bus.Running, bus.Stopped)
		}
		if want != "" && want != st {
			return "", badRequest("status", "contradicts enabled")
		}
		want = st
	}
	return want, nil
}

func (h *handler) delete(w http.ResponseWriter, r *http.Request) {
	if err := h.b.Integrations().Delete(r.Context(), r.PathValue("id")); err != nil {
		h.fail(w, r, err, nil)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *handler) start(w http.ResponseWriter, r *http.Request) {
	in, err := h.b.Integrations().Start(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err, nil)
		return
	}
	h.writeIntegration(w, r, http.StatusOK, "", in)
}

func (h *handler) stop(w http.ResponseWriter, r *http.Request) {
	in, err := h.b.Integrations().Stop(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err, nil)
		return
	}
	h.writeIntegration(w, r, http.StatusOK, "", in)
}
