// Package admin is a web page for the people who run an application's
// integrations: the list of them (state, lag, deliveries of the last hour,
// last error) and, for each, its configuration with secrets masked, its
// log, its rejected events with retry and delete, its circuit with a reset,
// start and stop, and replays (a dry run's count first, then the replay
// and its progress). It is an http.Handler the application mounts under a
// path of its choice, behind its own authentication:
//
//	page, _ := admin.New(b, admin.Options{Caller: who, Activity: activity})
//	mux.Handle("/admin/", http.StripPrefix("/admin", page))
//
// It calls the same code as the management API (bus/api): the same view of
// the integrations for the same caller (access.Caller.Integrations: a
// tenant sees and changes its own integrations only, the administrator
// every one, by ref), the same functions for replays and retries, the
// same rendering of a configuration (bus/formats, secrets masked), the
// same answers to errors (api.Failure). The two cannot disagree.
//
// The pages are server-rendered html/template, their CSS and a little plain
// JavaScript embedded in the binary: everything reads without JavaScript,
// which only refreshes the live parts of an open page in place every
// Options.Refresh. Every form posts to the page it is on and is answered
// with a redirect back (or, on failure, the page with the error).
//
// Cross-site requests: every POST must come from the page's own origin, as
// http.CrossOriginProtection checks it (the browser's Sec-Fetch-Site
// header, else Origin against Host); others are answered 403 before
// anything runs. That needs no token and no session, which the page does
// not have: it works whatever authentication the application puts in front
// (basic authentication and cookies, which a browser sends with a forged
// request, included). Requests from outside a browser carry neither header
// and pass, as they forge nothing. The pages may not be framed
// (frame-ancestors 'none'), so no other site can overlay its buttons, and
// their Content-Security-Policy allows scripts and styles from the page's
// own origin only.
package admin

import (
	"context"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/access"
	"github.com/sinkbus/sinkbus/field"
	"github.com/sinkbus/sinkbus/internal/logging"
)

// DefaultRefresh is how often an open page refreshes itself when
// Options.Refresh is zero.
const DefaultRefresh = 5 * time.Second

// maxFormBytes bounds a posted form; the page's forms are a few fields.
const maxFormBytes = 16 << 10

// Options configures the page.
type Options struct {
	// Caller maps each request to its caller, as for the management API
	// (access.Identify): a tenant sees and manages its own integrations
	// only, the administrator every one. An error that is (or wraps)
	// access.ErrUnauthenticated is answered 401, any other 403. Required.
	Caller access.Identify
	// Activity, when set, gives the list its deliveries of the last hour;
	// it must be the bus's Observer too (bus.Observers). Nil leaves the
	// columns out.
	Activity *Activity
	// Refresh is how often an open page refreshes its live parts. Zero
	// means DefaultRefresh; negative turns it off.
	Refresh time.Duration
	// Logger receives the internal errors a page answers 500. Nil means
	// warnings and errors through slog.Default().
	Logger *slog.Logger
}

// Validate reports every invalid option, by its Go field name.
func (o Options) Validate() error {
	var p field.Problems
	if o.Caller == nil {
		p.Add("Caller", "required (access.Anyone(access.Admin()) shows every integration to anyone)")
	}
	return p.Err()
}

//go:embed templates static
var files embed.FS

// handler serves the page of one bus.
type handler struct {
	b      *bus.Bus
	opts   Options
	mux    *http.ServeMux
	pages  *template.Template
	origin *http.CrossOriginProtection
}

// New returns the admin page of b, or the problems of opts (each naming
// its field). Mount it under a prefix with http.StripPrefix; its links
// are relative, so any prefix works.
func New(b *bus.Bus, opts Options) (http.Handler, error) {
	if b == nil {
		return nil, errors.New("sinkbus: admin.New needs a bus")
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Refresh == 0 {
		opts.Refresh = DefaultRefresh
	}
	opts.Logger = logging.OrDefault(opts.Logger)
	h := &handler{b: b, opts: opts, mux: http.NewServeMux(), pages: parsePages(),
		origin: http.NewCrossOriginProtection()}
	static, _ := fs.Sub(files, "static")
	h.mux.Handle("GET /static/", http.StripPrefix("/static", http.FileServerFS(static)))
	h.mux.HandleFunc("GET /{$}", h.list)
	h.mux.HandleFunc("GET /integrations/{id}", h.integration)
	h.mux.HandleFunc("POST /integrations/{id}", h.act)
	return h, nil
}

type callerKey struct{}

// callerOf is the caller ServeHTTP found.
func callerOf(r *http.Request) access.Caller {
	c, _ := r.Context().Value(callerKey{}).(access.Caller)
	return c
}

// ServeHTTP refuses cross-site changes and requests without a caller, then
// routes.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "+
		"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("Cache-Control", "no-store")
	if err := h.origin.Check(r); err != nil {
		h.problem(w, r, http.StatusForbidden, "cross_origin", "This request came from another site; it was refused. Use the page's own buttons.")
		return
	}
	c, err := h.opts.Caller.Check(r, h.opts.Logger)
	if err != nil {
		if errors.Is(err, access.ErrUnauthenticated) {
			h.problem(w, r, http.StatusUnauthorized, "unauthenticated", "Authentication required.")
		} else {
			h.problem(w, r, http.StatusForbidden, "forbidden", "Not allowed to use this page.")
		}
		return
	}
	h.mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, c)))
}
