package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/field"
	"github.com/sinkbus/sinkbus/middleware"
)

// Error is the body of every error response (NewStore's error object, plus
// the invalid fields of a validation failure).
type Error struct {
	ErrorCode string `json:"error_code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
	// Errors lists each invalid field of a validation failure.
	Errors []FieldProblem `json:"errors,omitempty"`
}

// FieldProblem is one invalid field: its JSON path and the rule it breaks.
type FieldProblem struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// statusOf maps the bus's errors to a status and an error code.
func statusOf(err error) (int, string) {
	switch {
	case errors.Is(err, bus.ErrInvalid), errors.Is(err, bus.ErrInvalidEvent), errors.Is(err, errBadRequest):
		return http.StatusBadRequest, "validation_failed"
	case errors.Is(err, bus.ErrNotFound):
		return http.StatusNotFound, "integration_not_found"
	case errors.Is(err, middleware.ErrNotFound):
		return http.StatusNotFound, "rejected_event_not_found"
	case errors.Is(err, bus.ErrExists):
		return http.StatusConflict, "integration_exists"
	case errors.Is(err, bus.ErrLimit):
		return http.StatusConflict, "integration_limit_reached"
	case errors.Is(err, bus.ErrImmutable):
		return http.StatusConflict, "immutable_field"
	case errors.Is(err, bus.ErrNotRunning):
		return http.StatusConflict, "integration_not_running"
	case errors.Is(err, bus.ErrClosed):
		return http.StatusServiceUnavailable, "unavailable"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, "request_cancelled"
	}
	return http.StatusInternalServerError, "internal_error"
}

// errBadRequest marks the API's own validation failures.
var errBadRequest = errors.New("sinkbus: bad request")

// badRequest is a validation failure of the request itself.
func badRequest(name, rule string, args ...any) error {
	return errors.Join(errBadRequest, field.New(name, rule, args...))
}

// fail answers err. Internal errors are logged, never shown: the caller
// gets the request id to quote.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, body := Failure(err)
	if status == http.StatusInternalServerError {
		h.opts.Logger.Error("Management API request failed", "error", err,
			"request_id", requestID(r), "method", r.Method, "path", r.URL.Path)
	}
	body.RequestID = requestID(r)
	writeJSON(w, status, body)
}

// Failure is the API's answer to err, returned by the bus or by this
// package's functions: its status and body (without a request id). An
// internal error (500) says "internal error" alone; the caller logs err.
// Other handlers calling the same functions (bus/admin) answer alike
// with it.
func Failure(err error) (int, Error) {
	var dest destinationError
	switch {
	case errors.Is(err, middleware.ErrCircuitOpen):
		return http.StatusServiceUnavailable, Error{ErrorCode: "circuit_open",
			Message: "the integration's circuit is open; retry after its cool-down or reset it"}
	case errors.As(err, &dest):
		return http.StatusBadGateway, Error{ErrorCode: "destination_failed", Message: dest.Error()}
	}
	status, code := statusOf(err)
	if status == http.StatusInternalServerError {
		return status, Error{ErrorCode: code, Message: "internal error"}
	}
	var problems []FieldProblem
	if status == http.StatusBadRequest || code == "immutable_field" {
		problems = fieldProblems(err)
	}
	return status, Error{ErrorCode: code, Message: message(err, problems), Errors: problems}
}

// sentinels are the texts of the errors that only classify a failure; they
// are left out of the message.
var sentinels = []error{errBadRequest, bus.ErrInvalid, bus.ErrInvalidEvent, bus.ErrImmutable}

// fieldProblems lists the field errors in err.
func fieldProblems(err error) []FieldProblem {
	var out []FieldProblem
next:
	for _, e := range field.Errors(err) {
		fe := e.(*field.Error)
		if fe.Field == "" {
			for _, s := range sentinels {
				if fe.Rule == s.Error() {
					continue next
				}
			}
		}
		name, rule := fe.Field, fe.Rule
		if name == "" {
			rule = strings.TrimPrefix(rule, "sinkbus: ")
		}
		out = append(out, FieldProblem{Field: name, Message: rule})
	}
	return out
}

// message is the text of an error response: the problems, each naming its
// field, or the error's own text.
func message(err error, problems []FieldProblem) string {
	if len(problems) == 0 {
		return strings.TrimPrefix(err.Error(), "sinkbus: ")
	}
	immutable := errors.Is(err, bus.ErrImmutable)
	parts := make([]string, len(problems))
	for i, p := range problems {
		switch {
		case immutable && p.Field != "" && p.Message == "cannot change after creation":
			parts[i] = p.Field
		case p.Field == "":
			parts[i] = p.Message
		default:
			parts[i] = p.Field + ": " + p.Message
		}
	}
	if immutable {
		return "cannot change after creation: " + strings.Join(parts, ", ")
	}
	return "invalid request: " + strings.Join(parts, "; ")
}

func writeError(w http.ResponseWriter, r *http.Request, status int, code, msg string, problems []FieldProblem) {
	writeJSON(w, status, Error{ErrorCode: code, Message: msg, RequestID: requestID(r), Errors: problems})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		data = []byte(`{"error_code":"internal_error","message":"cannot encode the response"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(data, '\n'))
}
