package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

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
	job, end := replay.NewJob(a.ID, a.Matched)
	job.From, job.To, job.Missing, job.Partial = a.From, a.To, a.Missing, a.Partial
	go func() {
		var o outcome
		// Until the replica running it says it ended, or is gone, or this
		// bus closes.
		err := p.state.AwaitEnd(p.ctx, id, 200*time.Millisecond, &o)
		if err == nil {
			err = o.err()
		} else {
			err = fmt.Errorf("%w: %w", replay.ErrAborted, err)
		}
		_ = p.state.Forget(context.Background(), id)
		end(err)
	}()
	return job, nil
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
		if err == nil {
			job, err = m.Replay(ctx, ref, req)
		}
		answer = replayAnswer{outcome: outcomeOf(err), ID: job.ID, Matched: job.Matched, From: job.From, To: job.To,
			Missing: job.Missing, Partial: job.Partial}
		if err == nil && job.Done != nil {
			defer func() {
				<-job.Done
				if err := p.state.End(context.Background(), id, outcomeOf(job.Err())); err != nil {
					b.logErr("Cannot tell the end of a replay asked through another replica", err, ref)
				}
			}()
		}
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
