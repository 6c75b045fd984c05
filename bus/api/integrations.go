package api

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/formats"
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

// writeIntegration answers in with status, in the shape of the request body
// (or the query's, or the default).
func (h *handler) writeIntegration(w http.ResponseWriter, r *http.Request, status int, body formats.Format, in bus.Integration) {
	f, err := h.responseFormat(r, body)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out, err := formats.Render(f, in, h.baseURL(r))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, status, out)
}

// responseFormat is the query's "format" when given, else the request body's
// shape, else the default.
func (h *handler) responseFormat(r *http.Request, body formats.Format) (formats.Format, error) {
	if q := r.URL.Query().Get("format"); q != "" {
		if f := formats.Format(q); f.Valid() {
			return f, nil
		}
		return "", badRequest("format", "must be %s, %s or %s", formats.Sinkbus, formats.ElasticPath, formats.NewStore)
	}
	if body != "" {
		return body, nil
	}
	return h.opts.Format, nil
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

func (h *handler) list(w http.ResponseWriter, r *http.Request, m *bus.Integrations) {
	f, err := h.responseFormat(r, "")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	list, err := m.List(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	base := h.baseURL(r)
	items := make([]any, len(list))
	for i, in := range list {
		out, err := formats.Render(f, in, base)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		if f == formats.ElasticPath {
			items[i] = out["data"]
			continue
		}
		items[i] = out
	}
	if f == formats.ElasticPath {
		writeJSON(w, http.StatusOK, map[string]any{"data": items})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"integrations": items})
}

// create accepts the three shapes; Elastic Path's and sinkbus's are answered
// 201 Created, NewStore's 200 as its API does.
func (h *handler) create(w http.ResponseWriter, r *http.Request, m *bus.Integrations) {
	body, ok := h.readBody(w, r)
	if !ok {
		return
	}
	in, f, err := formats.Create(r.Context(), m, body)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	status := http.StatusCreated
	if f == formats.NewStore {
		status = http.StatusOK
	}
	h.writeIntegration(w, r, status, f, in)
}

func (h *handler) get(w http.ResponseWriter, r *http.Request, m *bus.Integrations) {
	in, err := m.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.writeIntegration(w, r, http.StatusOK, "", in)
}

// update merges the body (any shape; RFC 7396 merge patch semantics) onto the
// integration and saves it (formats.Patch). Configuration strings sent back
// masked keep their stored values. "enabled" or "status" starts or stops
// the integration.
func (h *handler) update(w http.ResponseWriter, r *http.Request, m *bus.Integrations) {
	body, ok := h.readBody(w, r)
	if !ok {
		return
	}
	in, f, err := formats.Patch(r.Context(), m, r.PathValue("id"), body)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.writeIntegration(w, r, http.StatusOK, f, in)
}

func (h *handler) delete(w http.ResponseWriter, r *http.Request, m *bus.Integrations) {
	if err := m.Delete(r.Context(), r.PathValue("id")); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *handler) start(w http.ResponseWriter, r *http.Request, m *bus.Integrations) {
	in, err := m.Start(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.writeIntegration(w, r, http.StatusOK, "", in)
}

func (h *handler) stop(w http.ResponseWriter, r *http.Request, m *bus.Integrations) {
	in, err := m.Stop(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.writeIntegration(w, r, http.StatusOK, "", in)
}
