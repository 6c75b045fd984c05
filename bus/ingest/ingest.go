// Package ingest is the ingestion webhook of a sinkbus Bus (the Adobe
// Commerce integration starter kit's): an http.Handler through which
// third-party systems publish events into the bus with
//
//	POST {"data":{"uid":"event_uid_1","event":"be-observer.catalog_product_create","value":{...}}}
//
// uid becomes the event id, event its name and value its payload. The
// handler authenticates each request (a shared-secret signature, a bearer
// token or a function of the application's), accepts only the events its
// allowlist names, and publishes a uid once within a window: a repeated uid
// is answered as a duplicate and not published again, also after a restart
// (New reads the window's events back from the journal).
//
// With an access.Identify hook (Options.Caller, the one the management API
// takes), each request's caller decides the event's tenant: a tenant
// publishes its own events only, whatever the request says. A uid is then
// its tenant's alone: the event id is the tenant, ':' and the uid
// ("acme:event_uid_1"), so that two tenants' uids are neither taken for
// duplicates nor delivered under one id.
//
// Answers follow the starter kit's consumer: 200 with
// {"type":<event>,"response":{"success":true,"message":...}} on success;
// on failure the same shape with success false and the status tells the
// sender what to do: 400 (malformed body, missing field, unknown event: do
// not retry), 401 (not authenticated), 409 (the uid was published with
// another event or value within the dedupe window: not published), 413
// (body too large), 503 / 500 (retry later).
package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/access"
	"github.com/sinkbus/sinkbus/field"
	"github.com/sinkbus/sinkbus/filter"
	"github.com/sinkbus/sinkbus/internal/clock"
	"github.com/sinkbus/sinkbus/internal/logging"
	"github.com/sinkbus/sinkbus/replay"
	"github.com/sinkbus/sinkbus/sinks"
)

// Defaults of Options.
const (
	DefaultMaxBodyBytes = 1 << 20
	DefaultDedupeWindow = 24 * time.Hour
	DefaultDedupeSize   = 10000
)

// Options configures the ingestion handler.
type Options struct {
	// Authenticate checks every request before its body is decoded (a
	// signature of the body, say). Required unless Caller is set: use
	// AllowAll to accept unauthenticated requests knowingly. With both,
	// a request must pass both.
	Authenticate Authenticator
	// Caller maps every request to its caller before its body is read
	// (access.Identify, the hook the management API takes): a tenant's
	// events are that tenant's, the administrator's are Tenant's; a refused
	// request is answered 401 or 403. With Caller set, every event id is
	// "<tenant>:<uid>" (a '.' of the tenant written %2E, as event ids have
	// none; no tenant gives ":<uid>"), and uids are deduplicated per
	// tenant. Nil means every event is Tenant's, its id the uid.
	Caller access.Identify
	// Events lists the accepted event names, as observes patterns
	// ("be-observer.catalog_product_create", "be-observer.*"). Any other
	// event is answered 400. Empty means every valid name.
	Events []string
	// Tenant is the tenant of the events the application itself sends:
	// every event without Caller, the administrator's with it. Empty means
	// none.
	Tenant string
	// MaxBodyBytes bounds a request body; a larger one is answered 413.
	// Zero means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// DedupeWindow is how long a uid is remembered. Zero means
	// DefaultDedupeWindow; negative turns deduplication off. New reads the
	// events of the last window back from the journal (those Events and
	// the tenant options could have produced), so that a restart forgets
	// none; the journal's retention bounds what it finds.
	DedupeWindow time.Duration
	// DedupeSize bounds how many uids are remembered: beyond it the oldest
	// are forgotten. Zero means DefaultDedupeSize. On a bus with
	// Config.Postgres the uids are kept in the database instead, for the
	// whole window and shared by the replicas (bus.SharedDedupe), and the
	// size does not apply.
	DedupeSize int
	// Clock times the dedupe window. Nil means the wall clock.
	Clock bus.Clock
	// Logger receives the events that could not be published. Nil means
	// warnings and errors through slog.Default(), as bus.Config's.
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.DedupeWindow == 0 {
		o.DedupeWindow = DefaultDedupeWindow
	}
	if o.DedupeSize == 0 {
		o.DedupeSize = DefaultDedupeSize
	}
	o.Clock = clock.OrReal(o.Clock)
	o.Logger = logging.OrDefault(o.Logger)
}

// Validate reports every invalid option, by its Go field name.
func (o Options) Validate() error {
	var p field.Problems
	if o.Authenticate == nil && o.Caller == nil {
		p.Add("Authenticate", "required unless Caller is set (AllowAll accepts every request)")
	}
	if _, err := filter.Compile(o.Events, filter.Conditions{}); err != nil {
		for _, e := range field.Errors(err) {
			fe := e.(*field.Error)
			p.Add("Events"+strings.TrimPrefix(fe.Field, "observes"), "%s", fe.Rule)
		}
	}
	if o.Tenant != "" {
		p.Merge("Tenant", bus.ValidateTenant(o.Tenant))
	}
	if o.MaxBodyBytes < 0 {
		p.Add("MaxBodyBytes", "must not be negative")
	}
	if o.DedupeSize < 0 {
		p.Add("DedupeSize", "must not be negative")
	}
	return p.Err()
}

// Handler is the ingestion webhook. Create it with New; it is safe for
// concurrent use.
type Handler struct {
	b      *bus.Bus
	opts   Options
	events *filter.Filter
	seen   *dedupe          // nil when deduplication is off
	shared bus.SharedDedupe // instead of seen on a bus the replicas share
}

// New returns the ingestion handler publishing into b. With deduplication
// on, it first reads the journal's events of the last DedupeWindow.
func New(b *bus.Bus, opts Options) (*Handler, error) {
	if b == nil {
		return nil, errors.New("sinkbus: ingest.New needs a bus")
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts.setDefaults()
	events, err := filter.Compile(opts.Events, filter.Conditions{})
	if err != nil {
		return nil, err
	}
	h := &Handler{b: b, opts: opts, events: events}
	if opts.DedupeWindow > 0 && b.SharedDedupe() != nil {
		h.shared = b.SharedDedupe()
	} else if opts.DedupeWindow > 0 {
		h.seen = newDedupe(opts.DedupeWindow, opts.DedupeSize, opts.Clock)
		if err := h.rememberRecent(); err != nil {
			return nil, fmt.Errorf("sinkbus: ingest: reading the recent events back: %w", err)
		}
	}
	return h, nil
}

// rememberRecent fills the dedupe memory with the ids of the events in the
// journal that this handler could have published within the window: their
// names pass Events, and their tenant is Tenant or, with Caller, the one
// their id names. Others cannot meet a uid of ours, and would only take
// room.
func (h *Handler) rememberRecent() error {
	since := h.opts.Clock.Now().Add(-h.opts.DedupeWindow)
	return h.b.Events().Scan(context.Background(), since, time.Time{}, func(r replay.Record) bool {
		if r.Time.Before(since) || !h.events.MatchName(r.Metadata[sinks.MetaName]) {
			return true
		}
		tenant := r.Metadata[sinks.MetaTenant]
		if h.opts.Caller == nil && tenant != h.opts.Tenant ||
			h.opts.Caller != nil && !strings.HasPrefix(r.UUID, tenantPrefix(tenant)) {
			return true
		}
		h.seen.remember(r.UUID, fingerprintOf(r.Metadata[sinks.MetaName], r.Payload), r.Time)
		return true
	})
}

// eventID is the id of the event a uid becomes under tenant.
func (h *Handler) eventID(tenant, uid string) string {
	if h.opts.Caller == nil {
		return uid
	}
	return tenantPrefix(tenant) + uid
}

// tenantPrefix starts the event ids of tenant's uids. Tenants have no ':'
// or '%', so no two tenants' ids can meet.
func tenantPrefix(tenant string) string {
	return strings.ReplaceAll(tenant, ".", "%2E") + ":"
}

// Response is the body of every answer, as the starter kit's consumer
// action answers.
type Response struct {
	// Type is the event name, when the request named one.
	Type     string `json:"type"`
	Response Result `json:"response"`
}

// Result tells how the event fared.
type Result struct {
	Success bool   `json:"success"`
	Message string `json:"message"`
	// Duplicate is true when the uid was published before, within the
	// dedupe window: the event was not published again.
	Duplicate bool `json:"duplicate,omitempty"`
}

// ServeHTTP publishes one event.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		answer(w, http.StatusMethodNotAllowed, "", r.Method+" is not allowed; POST the event")
		return
	}
	tenant, ok := h.tenant(w, r)
	if !ok {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			answer(w, http.StatusRequestEntityTooLarge, "", "the request body is larger than the limit")
			return
		}
		answer(w, http.StatusBadRequest, "", "cannot read the request body")
		return
	}
	if auth := h.opts.Authenticate; auth != nil && auth(r, body) != nil {
		answer(w, http.StatusUnauthorized, "", "not authenticated")
		return
	}
	e, err := Decode(body)
	if err != nil {
		answer(w, http.StatusBadRequest, e.Name, problemText(err))
		return
	}
	if !h.events.MatchName(e.Name) {
		answer(w, http.StatusBadRequest, e.Name, "data.event: unknown event "+quote(e.Name))
		return
	}
	e.Tenant = tenant
	uid := e.ID
	e.ID = h.eventID(e.Tenant, uid)
	h.publish(w, r, e, uid)
}

// publish publishes e unless its id was published within the window; a
// request with the same id as one being published waits for its outcome.
func (h *Handler) publish(w http.ResponseWriter, r *http.Request, e bus.Event, uid string) {
	fp := fingerprintOf(e.Name, e.Payload)
	if h.shared != nil {
		h.publishShared(w, r, e, uid, fp)
		return
	}
	for h.seen != nil {
		entry, owner := h.seen.reserve(e.ID, fp)
		if owner {
			err := h.b.Publish(r.Context(), e)
			h.seen.settle(entry, err == nil)
			h.published(w, e, uid, err)
			return
		}
		select {
		case <-entry.done:
		case <-r.Context().Done():
			answer(w, http.StatusServiceUnavailable, e.Name, "cancelled while the same uid was being published")
			return
		}
		if entry.published {
			answerSeen(w, e.Name, entry.event == fp)
			return
		}
		// The other attempt failed: this one tries.
	}
	h.published(w, e, uid, h.b.Publish(r.Context(), e))
}

// answerSeen answers a uid published within the window: a duplicate when
// it was the same event, else a conflict (called a duplicate, the event
// would be lost without a word).
func answerSeen(w http.ResponseWriter, name string, same bool) {
	if !same {
		answer(w, http.StatusConflict, name, "data.uid: already published within the dedupe window"+
			" with another event or value; send this event under a uid of its own")
		return
	}
	writeJSON(w, http.StatusOK, Response{Type: name, Response: Result{
		Success: true, Duplicate: true, Message: "Event already published (duplicate uid)"}})
}

// publishShared is publish with the dedupe window in the database: a
// request with the same uid as one being published, on any replica, polls
// for its outcome.
func (h *Handler) publishShared(w http.ResponseWriter, r *http.Request, e bus.Event, uid string, fp fingerprint) {
	for {
		owner, prior, err := h.shared.Reserve(r.Context(), e.ID, fp[:], h.opts.DedupeWindow)
		if err != nil {
			h.opts.Logger.Error("Cannot reach the dedupe window", "error", err, logging.EventID, e.ID)
			answer(w, http.StatusServiceUnavailable, e.Name, "the event could not be published; send it again")
			return
		}
		if owner {
			err := h.b.Publish(r.Context(), e)
			if serr := h.shared.Settle(context.WithoutCancel(r.Context()), e.ID, err == nil, h.opts.DedupeWindow); serr != nil {
				h.opts.Logger.Error("Cannot record a published uid", "error", serr, logging.EventID, e.ID)
			}
			h.published(w, e, uid, err)
			return
		}
		if prior.Published {
			answerSeen(w, e.Name, bytes.Equal(prior.Event, fp[:]))
			return
		}
		select { // being published elsewhere
		case <-time.After(20 * time.Millisecond):
		case <-r.Context().Done():
			answer(w, http.StatusServiceUnavailable, e.Name, "cancelled while the same uid was being published")
			return
		}
	}
}

// published answers the outcome of Publish of e, made of uid.
func (h *Handler) published(w http.ResponseWriter, e bus.Event, uid string, err error) {
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, Response{Type: e.Name, Response: Result{Success: true, Message: "Event published successfully"}})
	case errors.Is(err, bus.ErrInvalidEvent):
		answer(w, http.StatusBadRequest, e.Name, problemText(renameFields(err, e.ID != uid)))
	case errors.Is(err, bus.ErrClosed):
		answer(w, http.StatusServiceUnavailable, e.Name, "the bus is closed; retry later")
	default:
		h.opts.Logger.Error("Cannot publish an ingested event", "error", err, logging.EventID, e.ID, "name", e.Name)
		answer(w, http.StatusInternalServerError, e.Name, "the event could not be published; retry later")
	}
}

// tenant is the tenant of the events of r's caller: Tenant without a
// Caller hook and for the administrator, the caller's own for a tenant.
// It answers r when the hook refuses it (ok false).
func (h *Handler) tenant(w http.ResponseWriter, r *http.Request) (tenant string, ok bool) {
	if h.opts.Caller == nil {
		return h.opts.Tenant, true
	}
	c, err := h.opts.Caller.Check(r, h.opts.Logger)
	switch {
	case errors.Is(err, access.ErrUnauthenticated):
		answer(w, http.StatusUnauthorized, "", "not authenticated")
		return "", false
	case err != nil:
		answer(w, http.StatusForbidden, "", "not allowed to publish")
		return "", false
	case c.IsAdmin():
		return h.opts.Tenant, true
	}
	return c.Tenant(), true
}

// Decode reads an ingestion request body: uid becomes the event id, event
// its name and value its payload (compacted). Its errors name every missing
// or mistyped field ("data.uid: required") and never quote a value. It does
// not check the name's syntax or the id's length: Bus.Publish does.
func Decode(body []byte) (bus.Event, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		if !json.Valid(body) {
			return bus.Event{}, field.New("", "malformed JSON")
		}
		return bus.Event{}, field.New("", "must be a JSON object")
	}
	raw, ok := top["data"]
	if !ok || isNull(raw) {
		return bus.Event{}, field.New("data", "required")
	}
	var data map[string]json.RawMessage
	if err := json.Unmarshal(raw, &data); err != nil {
		return bus.Event{}, field.New("data", "must be an object")
	}
	var p field.Problems
	var e bus.Event
	e.ID = stringField(&p, data, "uid")
	e.Name = stringField(&p, data, "event")
	if v, ok := data["value"]; !ok || isNull(v) {
		p.Add("data.value", "required")
	} else {
		var buf bytes.Buffer
		if err := json.Compact(&buf, v); err != nil {
			p.Add("data.value", "malformed JSON")
		}
		e.Payload = buf.Bytes()
	}
	return e, p.Err()
}

func stringField(p *field.Problems, data map[string]json.RawMessage, key string) string {
	raw, ok := data[key]
	if !ok || isNull(raw) {
		p.Add("data."+key, "required")
		return ""
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		p.Add("data."+key, "must be a string")
		return ""
	}
	if s == "" {
		p.Add("data."+key, "required")
	}
	return s
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// renameFields names the bus's event fields as the request does;
// prefixed tells that the id is the uid behind its tenant's prefix.
func renameFields(err error, prefixed bool) error {
	var out []error
	for _, e := range field.Errors(err) {
		fe := e.(*field.Error)
		if fe.Field == "" {
			continue // the sentinel: the fields say it all
		}
		name := fe.Field
		for from, to := range map[string]string{"id": "data.uid", "name": "data.event", "payload": "data.value", "tenant": "tenant"} {
			if name == from || strings.HasPrefix(name, from+".") {
				name = to + strings.TrimPrefix(name, from)
				break
			}
		}
		rule := fe.Rule
		if prefixed && fe.Field == "id" {
			rule += " (in the event id <tenant>:<uid>)"
		}
		out = append(out, field.New(name, "%s", rule))
	}
	if len(out) == 0 {
		return err
	}
	return errors.Join(out...)
}

// problemText lists field errors on one line.
func problemText(err error) string {
	errs := field.Errors(err)
	parts := make([]string, len(errs))
	for i, e := range errs {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// answer writes a failure.
func answer(w http.ResponseWriter, status int, event, msg string) {
	writeJSON(w, status, Response{Type: event, Response: Result{Success: false, Message: msg}})
}

func writeJSON(w http.ResponseWriter, status int, v Response) {
	data, _ := json.Marshal(v) // cannot fail: strings and booleans
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(data, '\n'))
}
