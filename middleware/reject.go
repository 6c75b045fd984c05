package middleware

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sinkbus/sinkbus/internal/clock"
	"github.com/sinkbus/sinkbus/internal/stopping"
	"github.com/sinkbus/sinkbus/internal/textcut"
	"github.com/sinkbus/sinkbus/sinks"
)

// Reject is the outermost middleware: every failure that reaches it is final
// (a permanent failure, or retries exhausted), so it stores the event in the
// rejected store with the reason, logs event_rejected, and acknowledges the
// message. If the store cannot take the event, it returns the error: the
// router nacks and the event is delivered again later, not lost. When the
// message's context is done (the bus is stopping), the failure is returned
// as is: the event stays in the journal.
type Reject struct {
	// IntegrationID names the integration in the stores.
	IntegrationID string
	// Store receives the rejected events. Required.
	Store RejectedStore
	// Log receives event_rejected and rejected_event_evicted entries. Nil
	// means none are written.
	Log LogStore
	// Clock dates the entries. Nil means clock.Real.
	Clock clock.Clock
	// Logger nil means watermill.NopLogger.
	Logger watermill.LoggerAdapter
	// OnReject is called after an event was stored, for metrics. Nil means
	// no call.
	OnReject func(integrationID string, e RejectedEvent)
}

// Middleware returns h whose final failures end in the rejected store.
func (r Reject) Middleware(h message.HandlerFunc) message.HandlerFunc {
	r.Clock = clock.OrReal(r.Clock)
	if r.Logger == nil {
		r.Logger = watermill.NopLogger{}
	}
	return func(msg *message.Message) ([]*message.Message, error) {
		ctx := msg.Context()
		out, err := h(msg)
		if err == nil {
			return out, nil
		}
		if ctx.Err() != nil || errors.Is(err, stopping.ErrStopping) {
			return nil, err // not final: delivered again after the stop
		}
		if class, _ := sinks.Classify(err); class == sinks.ClassDelivered {
			return out, nil
		}
		return nil, r.reject(msg, err)
	}
}

func (r Reject) reject(msg *message.Message, cause error) error {
	e := RejectedFromMessage(msg)
	e.Failed(cause, r.Clock.Now())
	e.Attempts = 1
	if n, err := strconv.Atoi(msg.Metadata.Get(sinks.MetaAttempt)); err == nil && n > 0 {
		e.Attempts = n
	}
	fields := watermill.LogFields{"integration_id": r.IntegrationID, "event_id": e.EventID}
	evicted, err := r.Store.Put(r.IntegrationID, e)
	if err != nil {
		r.Logger.Error("Cannot store the rejected event; it will be delivered again", err, fields)
		return fmt.Errorf("sinkbus: storing rejected event %s: %w", e.EventID, err)
	}
	r.Logger.Info("Event rejected", fields.Add(watermill.LogFields{"reason": e.Reason, "attempts": e.Attempts}))
	if r.OnReject != nil {
		r.OnReject(r.IntegrationID, e)
	}
	for _, entry := range RejectionLog(e, e.Reason, evicted) {
		r.logEntry(entry)
	}
	return nil
}

// RejectionLog returns the log entries of storing e, rejected for reason,
// which evicted the events in evicted: event_rejected, then one
// rejected_event_evicted each.
func RejectionLog(e RejectedEvent, reason string, evicted []RejectedEvent) []LogEntry {
	out := []LogEntry{{Action: ActionEventRejected, Reason: reason, EventID: e.EventID, CreatedAt: e.CreatedAt}}
	for _, old := range evicted {
		out = append(out, LogEntry{
			Action:    ActionRejectedEvicted,
			Reason:    fmt.Sprintf("Rejected event %s evicted to make room for %s.", old.EventID, e.EventID),
			EventID:   old.EventID,
			CreatedAt: e.CreatedAt,
		})
	}
	return out
}

func (r Reject) logEntry(e LogEntry) {
	if r.Log == nil {
		return
	}
	if err := r.Log.Append(r.IntegrationID, e); err != nil {
		r.Logger.Error("Cannot write the integration log", err, watermill.LogFields{
			"integration_id": r.IntegrationID, "action": e.Action})
	}
}

// maxReason bounds the reason kept in log entries and rejected events.
const maxReason = 2048

// reasonOf returns the text of err for a log entry, cut to maxReason bytes.
func reasonOf(err error) string { return textcut.Cut(err.Error(), maxReason) }
