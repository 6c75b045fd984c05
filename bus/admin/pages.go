package admin

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/api"
	"github.com/sinkbus/sinkbus/bus/formats"
	"github.com/sinkbus/sinkbus/field"
	"github.com/sinkbus/sinkbus/middleware"
)

// page is what every template gets.
type page struct {
	Title string
	// Root leads from the page's URL to the mount point ("./", "../").
	Root string
	// Refresh is the auto-refresh period in milliseconds; zero: none.
	Refresh int64
	Caller  string
	Now     time.Time
	// Notice says what the last action did.
	Notice  string
	Problem *problem
	// Counted, when set, says Activity's counts are shown.
	Counted bool

	Rows   []row
	Detail *detail
}

// problem is a failure shown on the page, as the API would answer it.
type problem struct {
	Status int
	api.Error
}

// row is one integration as the list shows it.
type row struct {
	// ID is the integration as the caller's view names it: its id for a
	// tenant, its ref for the administrator.
	ID    string
	In    bus.Integration
	State string
	Lag   uint64
	Last  Counts
	// LastError is the newest log entry that tells of a failure.
	LastError *middleware.LogEntry
}

// detail is one integration's page beyond its row.
type detail struct {
	row
	Config   string
	Circuit  middleware.BreakerState
	Rejected []api.RejectedSummary
	Log      []middleware.LogEntry
	Replays  []replayRow
	// Highlight is the replay just started.
	Highlight string
	// Form holds the replay form's values; Count a dry run's answer.
	Form  replayForm
	Count *api.ReplayResponse
}

// replayForm is the replay form as posted, its times as typed (UTC).
type replayForm struct{ From, To string }

// replayRow is one replay as the integration log tells it.
type replayRow struct {
	ID      string
	Started time.Time
	Ended   time.Time
	State   string // running, completed or aborted
	Text    string // the replay_started entry: what it covers
	Outcome string // the entry that ended it
}

// failureActions are the log entries that tell of a failure: the list's
// last error is the newest of them.
var failureActions = map[string]bool{
	middleware.ActionRetryTriggered: true, middleware.ActionEventRejected: true,
	middleware.ActionCircuitWarning: true, middleware.ActionCircuitOpened: true,
	middleware.ActionCircuitProbeFailed: true, middleware.ActionRetentionLoss: true,
	middleware.ActionRejectedEvicted: true, bus.ActionReplayAborted: true, "upload_failed": true,
}

// lifecycleActions are the entries of a start, a stop and a completion.
var lifecycleActions = map[string]bool{
	middleware.ActionIntegrationStarted: true, middleware.ActionIntegrationStopped: true,
	middleware.ActionIntegrationCompleted: true,
}

// StateCompleted is the state of a temporary integration that delivered
// its range and stopped itself (bus.StateStopped as Health tells it).
const StateCompleted = "completed"

func (h *handler) newPage(r *http.Request, title, root string) page {
	p := page{Title: title, Root: root, Caller: callerOf(r).String(), Now: time.Now().UTC(),
		Counted: h.opts.Activity != nil}
	if h.opts.Refresh > 0 {
		p.Refresh = h.opts.Refresh.Milliseconds()
	}
	return p
}

// rowOf gathers what the list shows of in, named id in view m.
func (h *handler) rowOf(ctx context.Context, m *bus.Integrations, id string, in bus.Integration) (row, []middleware.LogEntry, error) {
	rw := row{ID: id, In: in}
	st, err := m.State(ctx, id)
	if err != nil {
		return rw, nil, err
	}
	rw.State = string(st)
	if rw.Lag, err = m.Lag(ctx, id); err != nil {
		return rw, nil, err
	}
	log, err := m.Log(ctx, id)
	if err != nil {
		return rw, nil, err
	}
	for i, e := range log {
		if failureActions[e.Action] {
			rw.LastError = &log[i]
			break
		}
	}
	if st == bus.StateStopped && in.Kind == bus.Temporary {
		for _, e := range log {
			if lifecycleActions[e.Action] {
				if e.Action == middleware.ActionIntegrationCompleted {
					rw.State = StateCompleted
				}
				break
			}
		}
	}
	if h.opts.Activity != nil {
		rw.Last = h.opts.Activity.Last(in.Ref())
	}
	return rw, log, nil
}

func (h *handler) list(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	m := callerOf(r).Integrations(h.b)
	list, err := m.List(ctx)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	p := h.newPage(r, "Integrations", "./")
	p.Notice = notices[r.URL.Query().Get("done")]
	for _, in := range list {
		id := in.Ref()
		if !callerOf(r).IsAdmin() {
			id = in.ID
		}
		rw, _, err := h.rowOf(ctx, m, id, in)
		if errors.Is(err, bus.ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			h.fail(w, r, err)
			return
		}
		p.Rows = append(p.Rows, rw)
	}
	h.render(w, r, http.StatusOK, "list", p)
}

// notices are the texts of ?done=, the outcome of the last action; other
// values show nothing, so a link cannot make the page say anything else.
var notices = map[string]string{
	"started": "The integration was started.",
	"stopped": "The integration was stopped; its events wait in the journal until it starts again.",
	"reset":   "The circuit was closed.",
	"retried": "The rejected event was delivered and left the list.",
	"deleted": "The rejected event was deleted.",
	"replay":  "The replay started; its progress is under Replays.",
}

var replayID = regexp.MustCompile(`^replay-[0-9]{1,20}$`)

func (h *handler) integration(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d, err := h.detail(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if replayID.MatchString(q.Get("replay")) {
		d.Highlight = q.Get("replay")
	}
	p := h.newPage(r, d.In.Name, "../")
	p.Notice = notices[q.Get("done")]
	p.Detail = d
	h.render(w, r, http.StatusOK, "integration", p)
}

// detail gathers the page of the integration the request names.
func (h *handler) detail(r *http.Request) (*detail, error) {
	ctx, id := r.Context(), r.PathValue("id")
	m := callerOf(r).Integrations(h.b)
	in, err := m.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	rw, log, err := h.rowOf(ctx, m, id, in)
	if err != nil {
		return nil, err
	}
	d := &detail{row: rw, Log: log, Replays: replays(log)}
	cfg, err := formats.Render(formats.Sinkbus, in, "")
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // html/template escapes it
	enc.SetIndent("", "  ")
	if err := enc.Encode(cfg); err != nil {
		return nil, err
	}
	d.Config = buf.String()
	if d.Circuit, err = m.Circuit(ctx, id); err != nil {
		return nil, err
	}
	rejected, err := api.Rejected(ctx, m, id)
	if err != nil {
		return nil, err
	}
	d.Rejected = rejected.RejectedEvents
	return d, nil
}

// replays reads the replays out of the log by the job id each replay
// entry's reason begins with, newest first.
func replays(log []middleware.LogEntry) []replayRow {
	var out []replayRow
	at := map[string]int{}
	for i := len(log) - 1; i >= 0; i-- { // oldest first
		e := log[i]
		id, text, ok := strings.Cut(e.Reason, ": ")
		if !ok || !replayID.MatchString(id) {
			continue
		}
		switch e.Action {
		case bus.ActionReplayStarted:
			at[id] = len(out)
			out = append(out, replayRow{ID: id, Started: e.CreatedAt, State: "running", Text: text})
		case bus.ActionReplayCompleted, bus.ActionReplayAborted:
			j, ok := at[id]
			if !ok { // its start left the log
				j = len(out)
				at[id] = j
				out = append(out, replayRow{ID: id})
			}
			out[j].Ended, out[j].Outcome = e.CreatedAt, text
			out[j].State = strings.TrimPrefix(e.Action, "replay_")
		}
	}
	// Newest first: the bus numbers its replays in the order they start
	// (from 1 again after a restart: the later of two alike comes first).
	slices.Reverse(out)
	slices.SortStableFunc(out, func(a, b replayRow) int { return cmp.Compare(replayNumber(b.ID), replayNumber(a.ID)) })
	return out
}

// replayNumber is the number of a replay's id ("replay-12": 12).
func replayNumber(id string) uint64 {
	n, _ := strconv.ParseUint(strings.TrimPrefix(id, "replay-"), 10, 64)
	return n
}

// act runs a form's action on the integration the request names, and
// answers with a redirect to its page, or the page with the problem.
func (h *handler) act(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		h.problem(w, r, http.StatusBadRequest, "invalid_request", "The form cannot be read.")
		return
	}
	ctx, id := r.Context(), r.PathValue("id")
	m := callerOf(r).Integrations(h.b)
	event := r.PostForm.Get("event")
	var (
		done string
		err  error
	)
	switch do := r.PostForm.Get("do"); do {
	case "start":
		_, err = m.Start(ctx, id)
		done = "started"
	case "stop":
		_, err = m.Stop(ctx, id)
		done = "stopped"
	case "reset":
		err = m.ResetCircuit(ctx, id)
		done = "reset"
	case "retry":
		err = api.Retry(ctx, m, id, event)
		done = "retried"
	case "delete":
		err = m.DeleteRejected(ctx, id, event)
		done = "deleted"
	case "count", "replay":
		form := replayForm{From: r.PostForm.Get("from"), To: r.PostForm.Get("to")}
		req, perr := form.request(do == "count")
		if perr != nil {
			h.showDetail(w, r, form, nil, perr)
			return
		}
		resp, rerr := api.Replay(ctx, m, id, req)
		if rerr != nil || do == "count" {
			h.showDetail(w, r, form, &resp, rerr)
			return
		}
		back(w, url.PathEscape(id)+"?done=replay&replay="+url.QueryEscape(resp.ReplayID)+"#replays")
		return
	default:
		h.showDetail(w, r, replayForm{}, nil, errors.Join(bus.ErrInvalid, field.New("do", "must be start, stop, reset, retry, delete, count or replay")))
		return
	}
	if err != nil {
		h.showDetail(w, r, replayForm{}, nil, err)
		return
	}
	back(w, url.PathEscape(id)+"?done="+done)
}

// back answers a form with a redirect to target, relative to the posted
// URL (the mount prefix is the application's, unknown here).
func back(w http.ResponseWriter, target string) {
	w.Header().Set("Location", target)
	w.WriteHeader(http.StatusSeeOther)
}

// showDetail answers a form with the integration's page: the dry run's
// count, or the problem err (nil for none) with its status.
func (h *handler) showDetail(w http.ResponseWriter, r *http.Request, form replayForm, count *api.ReplayResponse, err error) {
	d, derr := h.detail(r)
	if derr != nil {
		h.fail(w, r, derr)
		return
	}
	d.Form = form
	p := h.newPage(r, d.In.Name, "../")
	p.Detail = d
	status := http.StatusOK
	if err != nil {
		status = h.problemOf(r, err, &p)
	} else {
		d.Count = count
	}
	h.render(w, r, status, "integration", p)
}

// timeLayouts are what a datetime-local input sends, with or without
// seconds, and RFC 3339.
var timeLayouts = []string{"2006-01-02T15:04", "2006-01-02T15:04:05", time.RFC3339}

// request reads the form into the API's replay request; times without a
// zone are UTC.
func (f replayForm) request(dryRun bool) (api.ReplayRequest, error) {
	req := api.ReplayRequest{DryRun: dryRun}
	var p field.Problems
	for _, v := range []struct {
		name, text string
		to         **time.Time
	}{{"from", f.From, &req.From}, {"to", f.To, &req.To}} {
		if v.text == "" {
			continue
		}
		for _, layout := range timeLayouts {
			if t, err := time.ParseInLocation(layout, v.text, time.UTC); err == nil {
				*v.to = &t
				break
			}
		}
		if *v.to == nil {
			p.Add(v.name, "must be a date and time, YYYY-MM-DDTHH:MM[:SS] in UTC")
		}
	}
	if err := p.Err(); err != nil {
		return req, errors.Join(bus.ErrInvalid, err)
	}
	return req, nil
}

// fail answers err with the error page.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	p := h.newPage(r, "Error", rootOf(r))
	p.Refresh = 0
	status := h.problemOf(r, err, &p)
	h.render(w, r, status, "error", p)
}

// problemOf puts err on p as the management API answers it, logging an
// internal error, and returns its status.
func (h *handler) problemOf(r *http.Request, err error, p *page) int {
	status, body := api.Failure(err)
	if status == http.StatusInternalServerError {
		h.opts.Logger.Error("Admin page request failed", "error", err, "method", r.Method, "path", r.URL.Path)
	}
	p.Problem = &problem{Status: status, Error: body}
	return status
}

// problem answers with the error page, saying msg.
func (h *handler) problem(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	p := h.newPage(r, "Error", rootOf(r))
	p.Problem = &problem{Status: status, Error: api.Error{ErrorCode: code, Message: msg}}
	p.Refresh = 0
	h.render(w, r, status, "error", p)
}

// rootOf leads from r's URL to the mount point.
func rootOf(r *http.Request) string {
	if strings.HasPrefix(r.URL.Path, "/integrations/") {
		return "../"
	}
	return "./"
}

func (h *handler) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	var buf bytes.Buffer
	if err := h.pages.ExecuteTemplate(&buf, name, p); err != nil {
		h.opts.Logger.Error("Admin page cannot render", "error", err, "page", name, "path", r.URL.Path)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
