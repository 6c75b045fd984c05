// Package api is the management API of a sinkbus Bus: an http.Handler an
// application mounts on its own server (under a prefix with
// http.StripPrefix) to manage integrations over HTTP with Elastic Path's and NewStore's request
// bodies and field names:
//
//	GET    /integrations                                   list
//	POST   /integrations                                   create
//	GET    /integrations/{id}                              get
//	PATCH  /integrations/{id}                              partial update
//	DELETE /integrations/{id}                              delete
//	POST   /integrations/{id}/start                        start
//	POST   /integrations/{id}/stop                         stop
//	GET    /integrations/{id}/log                          last log entries, newest first
//	GET    /integrations/{id}/rejected_events              rejected events, with status code and attempts
//	GET    /integrations/{id}/rejected_events/{event_id}   one, with its payload
//	DELETE /integrations/{id}/rejected_events/{event_id}   forget it
//	POST   /integrations/{id}/rejected_events/{event_id}/retry
//	GET    /integrations/{id}/circuit                      circuit breaker state
//	POST   /integrations/{id}/circuit/reset                close the circuit
//	POST   /integrations/{id}/replay                       {"from","to","dry_run"}
//
// Every request has a caller (Options.Caller, an access.Identify hook the
// application writes from its own authentication): a tenant, or the
// application as administrator. Every route works within the caller's
// scope. Under /integrations a tenant reaches its own integrations, by id;
// the administrator every integration, by ref (Integration.Ref), the list
// holding every tenant's. Each route is also served under
// /tenants/{tenant}, for tenant {tenant}'s integrations by id
// (/tenants/acme/integrations/erp-sync/log): the administrator reaches
// there any tenant's, a tenant its own only. Whatever a tenant asks of
// another tenant's integrations (by path, by an encoded '/' in an id, by a
// "tenant" in a body) is answered 404 as for an integration that does not
// exist, and changes nothing: another tenant's existence is not revealed.
// A tenant cannot create an integration for another tenant, nor one of
// the application's.
//
// Integrations are read and written in three shapes (bus/formats): sinkbus's
// own flat object, Elastic Path's {"data":{...}} envelope with links and
// meta.timestamps, and NewStore's (integration_type permanent / temporary,
// callback_parameters or s3_parameters, status). A request body in one shape
// is answered in the same shape; requests without a body are answered in
// Options.Format, or in the shape a "format" query parameter names.
//
// Secrets are masked in every response. Errors are
// {"error_code","message","request_id"}, plus "errors" listing each invalid
// field for validation failures.
//
// Requests that change anything (POST, PATCH, PUT, DELETE) must say
// "Content-Type: application/json", with a body or without: a browser sends
// a cross-site form or text/plain request without asking the API first,
// never an application/json one, so a foreign page cannot act through the
// browser of someone who may use the API. Others are answered 415.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/access"
	"github.com/sinkbus/sinkbus/bus/formats"
	"github.com/sinkbus/sinkbus/field"
	"github.com/sinkbus/sinkbus/internal/logging"
	"github.com/sinkbus/sinkbus/internal/textcut"
)

// DefaultMaxBodyBytes bounds request bodies when Options.MaxBodyBytes is zero.
const DefaultMaxBodyBytes = 1 << 20

// RequestIDHeader carries the request id: taken from the request when it is
// a plausible id, generated otherwise, and always echoed in the response.
const RequestIDHeader = "X-Request-Id"

// Options configures the management API.
type Options struct {
	// Caller maps each request to its caller: a tenant, who reaches its own
	// integrations only, or the administrator (see the package comment).
	// An error that is (or wraps) access.ErrUnauthenticated is answered 401,
	// any other 403, as is a caller that is nobody (the hook's mistake,
	// logged); the error's text is not shown to the caller. Required:
	// access.Anyone(access.Admin()) serves the whole API to anyone.
	Caller access.Identify
	// MaxBodyBytes bounds request bodies; a larger one is answered 413.
	// Zero means DefaultMaxBodyBytes; negative is invalid.
	MaxBodyBytes int64
	// Format is the shape of integrations in responses to requests that
	// carry none (GET, list, start, stop). Empty means formats.Sinkbus;
	// any other value must be one of the formats.Format constants.
	Format formats.Format
	// BaseURL is the absolute URL the API is mounted at
	// ("https://api.example.com/v2"), for Elastic Path's links.self. Empty
	// means the request's own scheme, Host and mount prefix; anything else
	// must be an absolute http or https URL.
	BaseURL string
	// Logger receives the internal errors answered 500. Nil means
	// warnings and errors through slog.Default(), as bus.Config's.
	Logger *slog.Logger
}

// Validate reports every invalid option, by its Go field name.
func (o Options) Validate() error {
	var p field.Problems
	if o.Caller == nil {
		p.Add("Caller", "required (access.Anyone(access.Admin()) serves the whole API to anyone)")
	}
	if o.MaxBodyBytes < 0 {
		p.Add("MaxBodyBytes", "must not be negative")
	}
	if o.Format != "" && !o.Format.Valid() {
		p.Add("Format", "must be %q, %q or %q", formats.Sinkbus, formats.ElasticPath, formats.NewStore)
	}
	if o.BaseURL != "" {
		u, err := url.Parse(o.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.Add("BaseURL", "must be an absolute http or https URL")
		} else if u.RawQuery != "" || u.Fragment != "" {
			p.Add("BaseURL", "must not have a query or a fragment")
		}
	}
	return p.Err()
}

func (o *Options) setDefaults() {
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.Format == "" {
		o.Format = formats.Sinkbus
	}
	o.Logger = logging.OrDefault(o.Logger)
}

// handler serves the API of one bus.
type handler struct {
	b    *bus.Bus
	opts Options
	mux  *http.ServeMux
}

// New returns the management API of b, or the problems of opts (each
// naming its field). Mount it under a prefix with http.StripPrefix.
func New(b *bus.Bus, opts Options) (http.Handler, error) {
	if b == nil {
		return nil, errors.New("sinkbus: api.New needs a bus")
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts.setDefaults()
	h := &handler{b: b, opts: opts, mux: http.NewServeMux()}
	routes := map[string]route{
		"GET /integrations":                                        h.list,
		"POST /integrations":                                       h.create,
		"GET /integrations/{id}":                                   h.get,
		"PATCH /integrations/{id}":                                 h.update,
		"DELETE /integrations/{id}":                                h.delete,
		"POST /integrations/{id}/start":                            h.start,
		"POST /integrations/{id}/stop":                             h.stop,
		"GET /integrations/{id}/log":                               h.log,
		"GET /integrations/{id}/rejected_events":                   h.rejectedList,
		"GET /integrations/{id}/rejected_events/{event_id}":        h.rejectedGet,
		"DELETE /integrations/{id}/rejected_events/{event_id}":     h.rejectedDelete,
		"POST /integrations/{id}/rejected_events/{event_id}/retry": h.rejectedRetry,
		"GET /integrations/{id}/circuit":                           h.circuit,
		"POST /integrations/{id}/circuit/reset":                    h.circuitReset,
		"POST /integrations/{id}/replay":                           h.replay,
	}
	for pattern, fn := range routes {
		method, path, _ := strings.Cut(pattern, " ")
		h.mux.HandleFunc(pattern, h.scoped(fn, false))
		h.mux.HandleFunc(method+" /tenants/{tenant}"+path, h.scoped(fn, true))
	}
	return h, nil
}

// route serves a request within m, the view of the integrations its
// caller may use there. Routes reach the integrations through m alone.
type route func(w http.ResponseWriter, r *http.Request, m *bus.Integrations)

// scoped runs fn within the view of the request's caller: on /integrations
// the caller's own (access.Caller.Integrations); below /tenants/{tenant}
// (byTenant) that tenant's, for the administrator and that tenant alone.
// Another tenant's integrations are not found, whatever they hold.
func (h *handler) scoped(fn route, byTenant bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c := callerOf(r)
		m := c.Integrations(h.b)
		if byTenant {
			t := r.PathValue("tenant")
			switch {
			case bus.ValidateTenant(t) != nil || !c.IsAdmin() && c.Tenant() != t:
				h.fail(w, r, notFound(r.PathValue("id")))
				return
			case c.IsAdmin():
				m = m.Tenant(t)
			}
		}
		fn(w, r, m)
	}
}

// notFound is the bus's answer for an integration id that does not exist,
// word for word (its id cut as the bus cuts it), or for none.
func notFound(id string) error {
	if id == "" {
		return bus.ErrNotFound
	}
	return fmt.Errorf("%w: %s", bus.ErrNotFound, strconv.Quote(textcut.Cut(id, 64)))
}

type (
	requestIDKey struct{}
	callerKey    struct{}
)

// callerOf is the caller ServeHTTP found; nobody when there is none, whose
// view fails at every call.
func callerOf(r *http.Request) access.Caller {
	c, _ := r.Context().Value(callerKey{}).(access.Caller)
	return c
}

// ServeHTTP tags the request with its id, finds its caller and routes it;
// unknown paths and methods get JSON errors like every other failure.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get(RequestIDHeader)
	if !validRequestID(id) {
		id = watermill.NewULID()
	}
	w.Header().Set(RequestIDHeader, id)
	r = r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id))

	c, err := h.opts.Caller.Check(r, h.opts.Logger, "request_id", id)
	if err != nil {
		if errors.Is(err, access.ErrUnauthenticated) {
			writeError(w, r, http.StatusUnauthorized, "unauthenticated", "authentication required", nil)
		} else {
			writeError(w, r, http.StatusForbidden, "forbidden", "not allowed to use this API", nil)
		}
		return
	}
	r = r.WithContext(context.WithValue(r.Context(), callerKey{}, c))
	if mutating(r.Method) && !isJSON(r.Header.Get("Content-Type")) {
		writeError(w, r, http.StatusUnsupportedMediaType, "unsupported_media_type",
			r.Method+" requests must have Content-Type: application/json", nil)
		return
	}
	if route, pattern := h.mux.Handler(r); pattern == "" {
		// The mux's own 404 or 405 (with its Allow header).
		rec := &statusRecorder{header: http.Header{}}
		route.ServeHTTP(rec, r)
		if rec.status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", rec.header.Get("Allow"))
			writeError(w, r, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" is not allowed on "+shortPath(r), nil)
			return
		}
		writeError(w, r, http.StatusNotFound, "not_found", "no such endpoint: "+shortPath(r), nil)
		return
	}
	h.mux.ServeHTTP(w, r)
}

// shortPath is the request's path for an error message, cut so that a
// long one is not echoed whole.
func shortPath(r *http.Request) string { return textcut.Cut(r.URL.Path, 128) }

// mutating reports whether method may change something.
func mutating(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// isJSON reports whether a Content-Type header names application/json
// (parameters such as charset allowed).
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/json"
}

func requestID(r *http.Request) string {
	id, _ := r.Context().Value(requestIDKey{}).(string)
	return id
}

// validRequestID accepts ids of 1 to 128 letters, digits and ._:- so that a
// caller's id can be echoed and logged safely.
func validRequestID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// statusRecorder captures the status and headers a handler writes.
type statusRecorder struct {
	header http.Header
	status int
}

func (s *statusRecorder) Header() http.Header { return s.header }
func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
}
func (s *statusRecorder) Write(p []byte) (int, error) {
	s.WriteHeader(http.StatusOK)
	return len(p), nil
}
