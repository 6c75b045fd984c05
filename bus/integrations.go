package bus

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/sinks"
)

// Integrations manages a bus's integrations: the lifecycle of the seeds
// (create, get, list, update, delete, start, stop), their log, rejected
// events and circuit breaker. Every read masks secrets. Changes take effect
// at once, without restarting the bus or disturbing other integrations.
type Integrations struct{ b *Bus }

// Create validates in, saves it and, unless in.Status is Stopped, starts it.
// Validation reports every problem at once, each naming its field
// (errors.Is(err, ErrInvalid)). A new permanent integration receives the
// events published from now on, or from StartsAt.
func (m *Integrations) Create(ctx context.Context, in Integration) (Integration, error) {
	if err := ctx.Err(); err != nil {
		return Integration{}, err
	}
	b := m.b
	now := b.cfg.Clock.Now()
	f, err := in.validate(b.cfg.Sinks, now, b.cfg.AllowPrivateNetworks)
	if err != nil {
		return Integration{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return Integration{}, ErrClosed
	}
	if in.ID == "" {
		in.ID = b.newID()
	}
	if _, ok := b.runners[in.ID]; ok {
		return Integration{}, fmt.Errorf("%w: %q", ErrExists, in.ID)
	}
	if len(b.runners) >= b.cfg.MaxIntegrations {
		return Integration{}, fmt.Errorf("%w: at most %d", ErrLimit, b.cfg.MaxIntegrations)
	}
	in = in.clone()
	if in.Kind == "" {
		in.Kind = Permanent
	}
	if in.Status == "" {
		in.Status = Running
	}
	in.CreatedAt, in.UpdatedAt = now, now
	r, err := b.newRunner(in, f)
	if err != nil {
		return Integration{}, err
	}
	// Pin where it starts now, so that events published before Run or
	// before its first delivery are not skipped.
	start := b.journal.Head(Topic)
	if !in.StartsAt.IsZero() {
		if start, err = b.journal.Storage().Seek(Topic, in.StartsAt); err != nil {
			return Integration{}, err
		}
	}
	// An in-process handler registered again after a restart keeps its cursor.
	if _, ok := b.journal.Cursor(Topic, in.ID); !ok {
		if err := b.journal.SetCursor(Topic, in.ID, start); err != nil {
			return Integration{}, err
		}
	}
	b.runners[in.ID] = r
	if err := b.saveLocked(); err != nil {
		delete(b.runners, in.ID)
		return Integration{}, err
	}
	b.log(in.ID, "integration_created", "Created via API.")
	if in.Status == Running {
		if err := r.start(); err != nil {
			return in.Masked(), err
		}
		b.log(in.ID, middleware.ActionIntegrationStarted, "Started on creation.")
	}
	return in.Masked(), nil
}

// CreateJSON creates an integration from the seeds' JSON (see
// DecodeIntegration).
func (m *Integrations) CreateJSON(ctx context.Context, body []byte) (Integration, error) {
	in, err := DecodeIntegration(m.b.cfg.Sinks, body)
	if err != nil {
		return Integration{}, err
	}
	return m.Create(ctx, in)
}

// Get returns an integration, secrets masked.
func (m *Integrations) Get(ctx context.Context, id string) (Integration, error) {
	m.b.mu.Lock()
	defer m.b.mu.Unlock()
	r, err := m.b.runner(id)
	if err != nil {
		return Integration{}, err
	}
	return r.in.Masked(), nil
}

// List returns every integration by id, secrets masked.
func (m *Integrations) List(ctx context.Context) ([]Integration, error) {
	m.b.mu.Lock()
	defer m.b.mu.Unlock()
	out := make([]Integration, 0, len(m.b.runners))
	for _, r := range m.b.runners {
		out = append(out, r.in.Masked())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Update replaces the mutable fields of integration id with those of in:
// name, description, observes, filter, configuration, delivery settings,
// concurrency and order key. The type, kind, StartsAt and EndsAt cannot
// change (ErrImmutable). A configuration string sent back as Get shows it
// (masked) keeps the stored value at the same place, so a client can change
// one field without knowing the secrets; a nil configuration keeps the
// stored one. A running integration restarts on the new settings from its
// cursor: nothing is skipped.
func (m *Integrations) Update(ctx context.Context, id string, in Integration) (Integration, error) {
	if err := ctx.Err(); err != nil {
		return Integration{}, err
	}
	b := m.b
	b.mu.Lock()
	defer b.mu.Unlock()
	old, err := b.runner(id)
	if err != nil {
		return Integration{}, err
	}
	var p sinks.Problems
	if in.Sink != nil && in.Sink.Type() != old.in.Type() {
		p.Add("integration_type", "cannot change after creation")
	}
	if in.Kind != "" && in.Kind != old.in.Kind {
		p.Add("kind", "cannot change after creation")
	}
	if !in.StartsAt.IsZero() && !in.StartsAt.Equal(old.in.StartsAt) {
		p.Add("starts_at", "cannot change after creation")
	}
	if !in.EndsAt.IsZero() && !in.EndsAt.Equal(old.in.EndsAt) {
		p.Add("ends_at", "cannot change after creation")
	}
	if err := p.Err(); err != nil {
		return Integration{}, fmt.Errorf("%w: %w", ErrImmutable, err)
	}
	next := in.clone()
	next.ID, next.Kind, next.StartsAt, next.EndsAt = id, old.in.Kind, old.in.StartsAt, old.in.EndsAt
	next.Status, next.CreatedAt = old.in.Status, old.in.CreatedAt
	// A configuration read back (masked) keeps the stored secret wherever
	// a masked one was sent back.
	if next.Sink == nil {
		next.Sink = old.in.Sink
	} else if next.Sink, err = unmaskConfig(b.cfg.Sinks, next.Sink, old.in.Sink); err != nil {
		return Integration{}, fmt.Errorf("%w: %w", ErrInvalid, sinks.Prefix("configuration", err))
	}
	next.UpdatedAt = b.cfg.Clock.Now()
	// StartsAt is in the past by now; validate as at creation.
	f, err := next.validate(b.cfg.Sinks, maxTime(b.cfg.Clock.Now(), next.StartsAt), b.cfg.AllowPrivateNetworks)
	if err != nil {
		return Integration{}, err
	}
	r, err := b.newRunner(next, f)
	if err != nil {
		return Integration{}, err
	}
	wasLive := old.live != nil
	if err := old.stop(); err != nil {
		b.cfg.Logger.Error("Stopping integration for update", err, nil)
	}
	r.gen = old.gen
	b.runners[id] = r
	if err := b.saveLocked(); err != nil {
		return Integration{}, err
	}
	b.log(id, "integration_updated", "Updated via API.")
	if wasLive || next.Status == Running {
		if err := r.start(); err != nil {
			return next.Masked(), err
		}
	}
	return next.Masked(), nil
}

// Delete stops an integration and removes it with its cursor, log and
// rejected events.
func (m *Integrations) Delete(ctx context.Context, id string) error {
	b := m.b
	b.mu.Lock()
	defer b.mu.Unlock()
	r, err := b.runner(id)
	if err != nil {
		return err
	}
	stopErr := r.stop()
	delete(b.runners, id)
	return errors.Join(stopErr, b.saveLocked(),
		b.journal.DeleteCursor(Topic, id), b.logs.Drop(id), b.rejected.Drop(id))
}

// Start resumes an integration from its cursor: within the retention window
// it receives every event it missed while stopped.
func (m *Integrations) Start(ctx context.Context, id string) (Integration, error) {
	return m.b.setStatus(id, Running, "Started via API.")
}

// Stop stops an integration; its cursor stays, so Start catches up.
func (m *Integrations) Stop(ctx context.Context, id string) (Integration, error) {
	return m.b.setStatus(id, Stopped, "Stopped via API.")
}

func (b *Bus) setStatus(id string, s Status, reason string) (Integration, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, err := b.runner(id)
	if err != nil {
		return Integration{}, err
	}
	if r.in.Status == s {
		return r.in.Masked(), nil
	}
	var opErr error
	if s == Running {
		opErr = r.start()
	} else {
		opErr = r.stop()
	}
	r.in.Status = s
	r.in.UpdatedAt = b.cfg.Clock.Now()
	if err := b.saveLocked(); err != nil {
		return Integration{}, err
	}
	action := middleware.ActionIntegrationStarted
	if s == Stopped {
		action = middleware.ActionIntegrationStopped
	}
	b.log(id, action, reason)
	return r.in.Masked(), opErr
}

// completed stops a temporary integration whose range has been delivered.
func (b *Bus) completed(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, ok := b.runners[id]
	if !ok || r.live == nil {
		return
	}
	if err := r.stop(); err != nil {
		b.cfg.Logger.Error("Stopping completed integration", err, nil)
	}
	r.in.Status = Stopped
	r.in.UpdatedAt = b.cfg.Clock.Now()
	if err := b.saveLocked(); err != nil {
		b.cfg.Logger.Error("Cannot save integrations", err, nil)
	}
	b.log(id, middleware.ActionIntegrationCompleted, "Every event up to ends_at was delivered; the integration stopped itself.")
}

// Log returns an integration's log, newest first.
func (m *Integrations) Log(ctx context.Context, id string) ([]middleware.LogEntry, error) {
	if _, err := m.b.lookup(id); err != nil {
		return nil, err
	}
	return m.b.logs.Entries(id)
}

// Rejected lists an integration's rejected events, newest first.
func (m *Integrations) Rejected(ctx context.Context, id string) ([]middleware.RejectedEvent, error) {
	if _, err := m.b.lookup(id); err != nil {
		return nil, err
	}
	return m.b.rejected.List(id)
}

// RejectedEvent returns one rejected event with its payload.
func (m *Integrations) RejectedEvent(ctx context.Context, id, eventID string) (middleware.RejectedEvent, error) {
	if _, err := m.b.lookup(id); err != nil {
		return middleware.RejectedEvent{}, err
	}
	return m.b.rejected.Get(id, eventID)
}

// DeleteRejected removes a rejected event.
func (m *Integrations) DeleteRejected(ctx context.Context, id, eventID string) error {
	if _, err := m.b.lookup(id); err != nil {
		return err
	}
	return m.b.rejected.Delete(id, eventID)
}

// RetryRejected delivers a rejected event once more through the
// integration's sink (timeout, breaker and classification included) and
// removes it from the store when it is delivered. The integration must run.
func (m *Integrations) RetryRejected(ctx context.Context, id, eventID string) error {
	b := m.b
	ev, err := m.RejectedEvent(ctx, id, eventID)
	if err != nil {
		return err
	}
	b.mu.Lock()
	r, err := b.runner(id)
	var d *delivery
	if err == nil {
		d = r.live
	}
	b.mu.Unlock()
	if err != nil {
		return err
	}
	if d == nil {
		return fmt.Errorf("%w: %q", ErrNotRunning, id)
	}
	msg := ev.Message()
	msg.Metadata.Set(sinks.MetaReplayed, "true")
	msg.SetContext(ctx)
	sink := d.sink
	err = r.chain.Deliver(msg, func(msg *message.Message) ([]*message.Message, error) {
		return nil, sink.Publish(msg.Metadata.Get(sinks.MetaName), msg)
	})
	if err != nil {
		return err
	}
	return b.rejected.Delete(id, eventID)
}

// Circuit returns the state of an integration's circuit breaker.
func (m *Integrations) Circuit(ctx context.Context, id string) (middleware.BreakerState, error) {
	r, err := m.b.lookup(id)
	if err != nil {
		return middleware.BreakerState{}, err
	}
	return r.chain.Breaker().State(), nil
}

// ResetCircuit closes an integration's circuit breaker at once.
func (m *Integrations) ResetCircuit(ctx context.Context, id string) error {
	r, err := m.b.lookup(id)
	if err != nil {
		return err
	}
	r.chain.Breaker().Reset()
	return nil
}

// Lag returns how many journal events the integration has not settled yet.
func (m *Integrations) Lag(ctx context.Context, id string) (uint64, error) {
	if _, err := m.b.lookup(id); err != nil {
		return 0, err
	}
	return m.b.journal.Lag(Topic, id), nil
}

func (b *Bus) runner(id string) (*runner, error) {
	r, ok := b.runners[id]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	return r, nil
}

func (b *Bus) lookup(id string) (*runner, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.runner(id)
}

func (b *Bus) newID() string {
	for {
		id := "int-" + lowerULID()
		if _, ok := b.runners[id]; !ok {
			return id
		}
	}
}

func lowerULID() string { return strings.ToLower(newEventID()) }

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
