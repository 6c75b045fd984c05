package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/field"
	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/replay"
	"github.com/sinkbus/sinkbus/sinks"
)

// LogResponse is the body of GET /integrations/{id}/log (NewStore's).
type LogResponse struct {
	// Entries are the last entries, newest first.
	Entries []middleware.LogEntry `json:"entries"`
}

// RejectedSummary is one item of the rejected events list: the event, why
// it was rejected and after how many attempts, without its payload.
type RejectedSummary struct {
	CreatedAt time.Time `json:"created_at"`
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Reason    string    `json:"reason"`
	// StatusCode is the destination's status for the last failure, zero
	// when it answered none.
	StatusCode int `json:"status_code"`
	Attempts   int `json:"attempts"`
}

// RejectedList is the body of GET /integrations/{id}/rejected_events.
type RejectedList struct {
	// RejectedEvents are newest first.
	RejectedEvents []RejectedSummary `json:"rejected_events"`
}

// ReplayRequest is the body of POST /integrations/{id}/replay. Every field
// is optional: the range defaults to everything the journal keeps.
type ReplayRequest struct {
	// From is inclusive; absent means the oldest retained event.
	From *time.Time `json:"from,omitempty"`
	// To is exclusive; absent means now.
	To *time.Time `json:"to,omitempty"`
	// DryRun only counts the events that would be delivered.
	DryRun bool `json:"dry_run,omitempty"`
}

// ReplayResponse answers a replay: 202 Accepted while it runs, 200 for a
// dry run.
type ReplayResponse struct {
	// ReplayID names the replay in the integration log; empty for a dry run.
	ReplayID string `json:"replay_id,omitempty"`
	// Matched is how many events of the range match the integration's
	// filter: how many the replay delivers.
	Matched int  `json:"matched"`
	DryRun  bool `json:"dry_run"`
	// From and To are the range the replay covers (replay.Job): From is
	// later than asked when the journal no longer holds the beginning of
	// the range, and absent when the range starts at the oldest event.
	From *time.Time `json:"from,omitempty"`
	To   time.Time  `json:"to"`
	// Missing is how many events published within the range the journal
	// no longer holds.
	Missing int `json:"missing"`
	// Partial is true when the journal no longer holds the whole range
	// asked for: an in-memory bus holds its MemoryBytes, a DataDir its
	// Retention.
	Partial bool `json:"partial"`
}

func (h *handler) log(w http.ResponseWriter, r *http.Request, m *bus.Integrations) {
	entries, err := m.Log(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if entries == nil {
		entries = []middleware.LogEntry{}
	}
	writeJSON(w, http.StatusOK, LogResponse{Entries: entries})
}

func (h *handler) rejectedList(w http.ResponseWriter, r *http.Request, m *bus.Integrations) {
	out, err := Rejected(r.Context(), m, r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// Rejected is GET /integrations/{id}/rejected_events within the view m:
// integration id's rejected events, newest first, without payloads. Other
// handlers showing the same list (bus/admin) call it.
func Rejected(ctx context.Context, m *bus.Integrations, id string) (RejectedList, error) {
	list, err := m.Rejected(ctx, id)
	if err != nil {
		return RejectedList{}, err
	}
	out := RejectedList{RejectedEvents: make([]RejectedSummary, len(list))}
	for i, e := range list {
		out.RejectedEvents[i] = RejectedSummary{CreatedAt: e.CreatedAt, ID: e.EventID, Name: e.Name, Reason: e.Reason,
			StatusCode: e.StatusCode, Attempts: e.Attempts}
	}
	return out, nil
}

// rejectedGet answers NewStore's tenant, name, published_at and payload,
// with the event id, why it was rejected and after how many attempts.
func (h *handler) rejectedGet(w http.ResponseWriter, r *http.Request, m *bus.Integrations) {
	e, err := m.RejectedEvent(r.Context(), r.PathValue("id"), r.PathValue("event_id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, e)
}

func (h *handler) rejectedDelete(w http.ResponseWriter, r *http.Request, m *bus.Integrations) {
	if err := m.DeleteRejected(r.Context(), r.PathValue("id"), r.PathValue("event_id")); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// rejectedRetry delivers the event once more: 204 when the destination took
// it (and it left the rejected store), 502 when it still fails, 503 while
// the circuit is open.
func (h *handler) rejectedRetry(w http.ResponseWriter, r *http.Request, m *bus.Integrations) {
	if err := Retry(r.Context(), m, r.PathValue("id"), r.PathValue("event_id")); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// Retry is POST /integrations/{id}/rejected_events/{event_id}/retry within
// the view m: the rejected event delivered once more (bus.Integrations.RetryRejected).
// Failure answers its error: 503 circuit_open while the circuit is open,
// 502 destination_failed when the destination still refuses the event.
func Retry(ctx context.Context, m *bus.Integrations, id, eventID string) error {
	err := m.RetryRejected(ctx, id, eventID)
	switch {
	case err == nil, errors.Is(err, middleware.ErrCircuitOpen), errors.Is(err, bus.ErrNotFound),
		errors.Is(err, middleware.ErrNotFound), errors.Is(err, bus.ErrNotRunning), errors.Is(err, bus.ErrClosed),
		ctx.Err() != nil:
		return err
	}
	// The sink's classified failure; its text names the destination
	// without credentials.
	return destinationError{err}
}

// destinationError is a manual retry the destination refused.
type destinationError struct{ err error }

func (e destinationError) Error() string {
	class, _ := sinks.Classify(e.err)
	return "the destination refused the event (" + class.String() + "): " + e.err.Error()
}

func (e destinationError) Unwrap() error { return e.err }

func (h *handler) circuit(w http.ResponseWriter, r *http.Request, m *bus.Integrations) {
	s, err := m.Circuit(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s)
}

func (h *handler) circuitReset(w http.ResponseWriter, r *http.Request, m *bus.Integrations) {
	id := r.PathValue("id")
	if err := m.ResetCircuit(r.Context(), id); err != nil {
		h.fail(w, r, err)
		return
	}
	s, err := m.Circuit(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s)
}

func (h *handler) replay(w http.ResponseWriter, r *http.Request, m *bus.Integrations) {
	data, ok := h.readBody(w, r)
	if !ok {
		return
	}
	var req ReplayRequest
	if len(data) > 0 {
		if err := field.DecodeStrict(data, &req); err != nil {
			h.fail(w, r, errors.Join(errBadRequest, err))
			return
		}
	}
	resp, err := Replay(r.Context(), m, r.PathValue("id"), req)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	status := http.StatusAccepted
	if req.DryRun {
		status = http.StatusOK
	}
	writeJSON(w, status, resp)
}

// Replay is POST /integrations/{id}/replay within the view m: a dry run
// counts the events of the range, a replay starts delivering them. Other
// handlers offering replays (bus/admin) call it.
func Replay(ctx context.Context, m *bus.Integrations, id string, req ReplayRequest) (ReplayResponse, error) {
	if req.From != nil && req.To != nil && !req.To.After(*req.From) {
		return ReplayResponse{}, badRequest("to", "must be after from")
	}
	rr := replay.Request{DryRun: req.DryRun}
	if req.From != nil {
		rr.From = *req.From
	}
	if req.To != nil {
		rr.To = *req.To
	}
	job, err := m.Replay(ctx, id, rr)
	if err != nil {
		return ReplayResponse{}, err
	}
	resp := ReplayResponse{ReplayID: job.ID, Matched: job.Matched, DryRun: req.DryRun,
		To: job.To.UTC(), Missing: job.Missing, Partial: job.Partial}
	if !job.From.IsZero() {
		from := job.From.UTC()
		resp.From = &from
	}
	return resp, nil
}
