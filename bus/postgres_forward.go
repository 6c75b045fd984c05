package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sinkbus/sinkbus/internal/logging"
	"github.com/sinkbus/sinkbus/internal/pgstate"
	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/replay"
)

// Kinds of requests forwarded to the replica delivering an integration.
const (
	requestRetry   = "retry_rejected"
	requestReplay  = "replay"
	requestCircuit = "circuit" // body: true to reset it
)

// outcome is an error as it travels between replicas: its text, and which
// of the bus's errors it matches.
type outcome struct {
	Err  string `json:"err,omitempty"`
	Kind string `json:"kind,omitempty"`
}

// sentinels are the errors an outcome names by kind.
var sentinels = map[string]error{
	"not_running":  ErrNotRunning,
	"not_found":    ErrNotFound,
	"invalid":      ErrInvalid,
	"circuit_open": middleware.ErrCircuitOpen,
	"no_rejected":  middleware.ErrNotFound,
	"aborted":      replay.ErrAborted,
}

func outcomeOf(err error) outcome {
	if err == nil {
		return outcome{}
	}
	o := outcome{Err: err.Error()}
	for k, s := range sentinels {
		if errors.Is(err, s) {
			o.Kind = k
			break
		}
	}
	return o
}

func (o outcome) err() error {
	if o.Err == "" {
		return nil
	}
	if s, ok := sentinels[o.Kind]; ok {
		return fmt.Errorf("%w (on the replica delivering it): %s", s, o.Err)
	}
	return errors.New(o.Err)
}

// replayAnswer is a forwarded replay's job.
type replayAnswer struct {
	outcome
	Row     int64     `json:"row,omitempty"` // its row in replays
	ID      string    `json:"id,omitempty"`
	Matched int       `json:"matched,omitempty"`
	From    time.Time `json:"from,omitzero"`
	To      time.Time `json:"to,omitzero"`
	Missing int       `json:"missing,omitempty"`
	Partial bool      `json:"partial,omitempty"`
}

type retryBody struct {
	EventID string `json:"event_id"`
}

// forwarding says whether a request about r, which does not deliver here,
// goes to the replica that does: it is to run, on a shared database.
func (p *pgBackend) forwarding(r *runner) bool {
	b := p.b
	b.mu.Lock()
	defer b.mu.Unlock()
	return r.in.Status == Running && !r.gone && r.live == nil && !b.closed
}

// ask writes a request for the replica delivering ref and waits (within
// ctx, and at most two lease periods, by when some replica has taken the
// integration) for its answer.
func (p *pgBackend) ask(ctx context.Context, ref, kind string, body any, answer any) (id int64, err error) {
	id, err = p.state.Ask(ctx, ref, kind, body)
	if err != nil {
		return 0, err
	}
	wctx, cancel := context.WithTimeout(ctx, 2*p.cfg.LeaseTTL)
	defer cancel()
	if err := p.state.Await(wctx, id, "answer", 20*time.Millisecond, answer); err != nil {
		_ = p.state.Forget(context.WithoutCancel(ctx), id)
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return 0, fmt.Errorf("%w: %s: no replica delivers it now", ErrNotRunning, quoteID(ref))
		}
		return 0, err
	}
	return id, nil
}

// forwardRetry has the replica delivering ref retry a rejected event.
func (p *pgBackend) forwardRetry(ctx context.Context, ref, eventID string) error {
	var o outcome
	id, err := p.ask(ctx, ref, requestRetry, retryBody{eventID}, &o)
	if err != nil {
		return err
	}
	_ = p.state.Forget(context.WithoutCancel(ctx), id)
	return o.err()
}

// forwardReplay has the replica delivering ref run a replay; the job's
// Done is closed when that replica says the replay ended.
func (p *pgBackend) forwardReplay(ctx context.Context, ref string, req replay.Request) (replay.Job, error) {
	var a replayAnswer
	id, err := p.ask(ctx, ref, requestReplay, req, &a)
	if err != nil {
		return replay.Job{}, err
	}
	if err := a.err(); err != nil {
		_ = p.state.Forget(context.WithoutCancel(ctx), id)
		return replay.Job{}, err
	}
	_ = p.state.Forget(context.WithoutCancel(ctx), id)
	job, end := replay.NewJob(a.ID, a.Matched)
	job.From, job.To, job.Missing, job.Partial = a.From, a.To, a.Missing, a.Partial
	go func() { end(p.awaitReplay(a.Row)) }()
	return job, nil
}

// replayGroup is the journal group whose cursor is the progress of the
// replay of row.
func (p *pgBackend) replayGroup(ref string, row int64) string { return pgstate.ReplayGroup(ref, row) }

// beginReplay writes a replay of ref that runs here, and returns its row.
func (p *pgBackend) beginReplay(ctx context.Context, ref string, spec replaySpec) (int64, error) {
	return p.state.BeginReplay(ctx, ref, spec)
}

// endReplay says how the replay of row ended (nil: completed), under the
// integration's lease, and removes its progress; false when it had ended,
// or another replica holds the integration (which goes on with a replay
// that completed here).
func (p *pgBackend) endReplay(ref string, row int64, err error, entry *middleware.LogEntry) bool {
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.LeaseTTL/5)
	defer cancel()
	state := pgstate.ReplayCompleted
	if err != nil {
		state = pgstate.ReplayAborted
	}
	ended, werr := p.state.EndReplay(ctx, ref, p.token(ref), row, state, outcomeOf(err), entry)
	if werr != nil {
		p.b.logErr("Cannot say that a replay ended", werr, ref)
		return false
	}
	// An aborted replay is over whoever holds the integration (a change
	// aborted it already, or this replica does now): its progress goes,
	// lest the journal save it again.
	if ended || err != nil {
		if derr := p.b.journal.DeleteCursor(Topic, p.replayGroup(ref, row)); derr != nil {
			p.b.logErr("Cannot remove the progress of a replay that ended", derr, ref)
		}
	}
	return ended
}

// awaitReplay waits until the replay of row ends, wherever it runs, or
// this bus closes, and returns how it ended.
func (p *pgBackend) awaitReplay(row int64) error {
	state, doc, err := p.state.AwaitReplay(p.ctx, row, 200*time.Millisecond)
	switch {
	case errors.Is(err, pgstate.ErrNoReplay):
		return fmt.Errorf("%w: %w", replay.ErrAborted, err)
	case err != nil && p.ctx.Err() != nil:
		return fmt.Errorf("%w: replay-%d: this replica closed; the replica delivering the integration goes on with it", replay.ErrAborted, row)
	case err != nil:
		return fmt.Errorf("%w: %w", replay.ErrAborted, err)
	case state == pgstate.ReplayCompleted:
		return nil
	}
	var o outcome
	if err := json.Unmarshal(doc, &o); err != nil || o.Err == "" {
		return fmt.Errorf("%w: replay-%d", replay.ErrAborted, row)
	}
	return o.err()
}

// resumeReplays resumes, on the integrations delivered here, the replays
// that no replica runs: left by the replica that delivered one before (it
// closed, died or lost the lease), from their saved progress.
func (p *pgBackend) resumeReplays(ctx context.Context) {
	b := p.b
	rows, err := p.state.RunningReplays(ctx, p.heldRefs())
	if err != nil {
		if ctx.Err() == nil {
			b.cfg.Logger.Error("Cannot read the replays of the integrations delivered here", "error", err)
		}
		return
	}
	idle := make(map[string]bool) // refs with a replay that runs nowhere
	for _, row := range rows {
		if r := p.runner(row.Ref); r != nil && !r.runsReplay(row.ID) {
			idle[row.Ref] = true
		}
	}
	for ref := range idle {
		p.resumeRef(ctx, ref)
	}
}

// resumeRef resumes the replays of ref that run nowhere.
func (p *pgBackend) resumeRef(ctx context.Context, ref string) {
	b := p.b
	r := p.runner(ref)
	if r == nil || r.op.lockContext(ctx) != nil {
		return
	}
	defer r.op.Unlock()
	b.mu.Lock()
	d, f, in := r.live, r.filter, r.in
	b.mu.Unlock()
	if d == nil || !p.holds(ref) {
		return
	}
	// Read again under op: a replay that ended here since is no longer
	// running (its row is settled before the delivery forgets it).
	rows, err := p.state.RunningReplays(ctx, []string{ref})
	if err != nil {
		return
	}
	for _, row := range rows {
		if d.runs(row.ID) {
			continue
		}
		jobID := fmt.Sprintf("replay-%d", row.ID)
		var spec replaySpec
		if err := json.Unmarshal(row.Job, &spec); err != nil {
			p.endReplay(ref, row.ID, fmt.Errorf("%w: %s cannot be read: %w", replay.ErrAborted, jobID, err), nil)
			continue
		}
		group := p.replayGroup(ref, row.ID)
		if err := b.journal.ReloadCursor(Topic, group); err != nil {
			b.logErr("Cannot read the progress of a replay to resume (the next round tries again)", err, ref)
			continue
		}
		at := spec.Start
		if c, ok := b.journal.Cursor(Topic, group); ok {
			at = max(c.Next, at)
		}
		_, err := b.runReplay(d, f, in, in.ID, jobID, row.ID, spec, func(replay.Job) {
			b.log(ref, ActionReplayResumed, fmt.Sprintf("%s: resumed by this replica from offset %d; the range ends before offset %d.",
				jobID, at, spec.Until))
			b.cfg.Logger.Info("Replay resumed", logging.IntegrationID, ref, "replay", jobID, "offset", at, "replica", p.replica)
		})
		if err != nil {
			b.logErr("Cannot resume a replay (the next round tries again)", err, ref)
		}
	}
}

// forwardCircuit reads (or resets) the circuit of integration id on the
// replica delivering it, whose breaker is the one that counts; ok is false
// when this replica delivers it, or none answers within a second (the
// caller then answers with its own breaker).
func (p *pgBackend) forwardCircuit(ctx context.Context, m *Integrations, id string, reset bool) (st middleware.BreakerState, ok bool) {
	r, key, err := m.lookup(id)
	if err != nil || !p.forwarding(r) {
		return st, false
	}
	wctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	rid, err := p.state.Ask(wctx, key, requestCircuit, reset)
	if err != nil {
		return st, false
	}
	defer func() { _ = p.state.Forget(context.WithoutCancel(ctx), rid) }()
	if err := p.state.Await(wctx, rid, "answer", 10*time.Millisecond, &st); err != nil {
		return st, false
	}
	return st, true
}

// serve does what other replicas asked of the integrations delivered here.
func (p *pgBackend) serve(ctx context.Context) {
	reqs, err := p.state.Take(ctx, p.replica, p.heldRefs())
	if err != nil {
		if ctx.Err() == nil {
			p.b.cfg.Logger.Error("Cannot read the requests of other replicas", "error", err)
		}
		return
	}
	for _, r := range reqs {
		p.b.background(func() { p.do(r.ID, r.Ref, r.Kind, r.Body) })
	}
}

func (p *pgBackend) do(id int64, ref, kind string, body json.RawMessage) {
	b := p.b
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.CloseTimeout)
	defer cancel()
	m := b.Integrations()
	var answer any
	switch kind {
	case requestRetry:
		var rb retryBody
		err := json.Unmarshal(body, &rb)
		if err == nil {
			err = m.RetryRejected(ctx, ref, rb.EventID)
		}
		answer = outcomeOf(err)
	case requestReplay:
		var req replay.Request
		err := json.Unmarshal(body, &req)
		var job replay.Job
		var row int64
		var r *runner
		var key string
		if err == nil {
			r, key, err = m.lookup(ref)
		}
		if err == nil { // here, never forwarded again (req is as the asker made it)
			job, row, err = m.replayHere(ctx, r, ref, key, req)
		}
		// The asker follows the replay's row: it may end on another replica.
		answer = replayAnswer{outcome: outcomeOf(err), Row: row, ID: job.ID, Matched: job.Matched, From: job.From, To: job.To,
			Missing: job.Missing, Partial: job.Partial}
	case requestCircuit:
		var reset bool
		_ = json.Unmarshal(body, &reset)
		var err error
		if reset {
			err = m.ResetCircuit(ctx, ref)
		}
		st, cerr := m.Circuit(ctx, ref)
		if err == nil {
			err = cerr
		}
		if err != nil {
			b.logErr("Cannot answer for the circuit asked through another replica", err, ref)
		}
		answer = st
	default:
		answer = outcome{Err: "unknown request " + kind}
	}
	if err := p.state.Answer(ctx, id, answer); err != nil {
		b.logErr("Cannot answer a request of another replica", err, ref)
	}
}
