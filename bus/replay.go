package bus

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sinkbus/sinkbus/filter"
	"github.com/sinkbus/sinkbus/replay"
	"github.com/sinkbus/sinkbus/sinks"
)

// Integration log actions of replays.
const (
	// ActionReplayStarted: a replay began; the reason names the job.
	ActionReplayStarted = "replay_started"
	// ActionReplayCompleted: every event of a replay's range was settled.
	ActionReplayCompleted = "replay_completed"
	// ActionReplayAborted: the integration stopped (or changed, or the bus
	// closed) before the replay's range was settled. The events not settled
	// are not delivered again; ask for a new replay.
	ActionReplayAborted = "replay_aborted"
)

// Replay delivers again the events published in the request's range that
// match the integration's filter, through the same middleware and sink,
// marked as replayed (sinks.MetaReplayed; the webhook sink sends
// X-Sinkbus-Replayed). Live delivery goes on beside it. A dry run only
// counts. The integration must be running.
//
// The job's Done is closed when the replay ends: when every event of the
// range is settled, or when it is aborted because the integration stopped,
// changed or was deleted, or the bus closed. Job.Err then says which
// (replay.ErrAborted), as the integration log does (ActionReplayCompleted or
// ActionReplayAborted, with the job id).
func (m *Integrations) Replay(ctx context.Context, id string, req replay.Request) (replay.Job, error) {
	if err := ctx.Err(); err != nil {
		return replay.Job{}, err
	}
	b := m.b
	// A replay covers what is already published: it ends at the latest now.
	if now := b.cfg.Clock.Now(); req.To.IsZero() || req.To.After(now) {
		req.To = now.Add(1)
	}
	if !req.From.IsZero() && !req.To.After(req.From) {
		return replay.Job{}, fmt.Errorf("%w: to: must be after from", ErrInvalid)
	}
	r, err := b.lookup(id)
	if err != nil {
		return replay.Job{}, err
	}
	if req.DryRun {
		b.mu.Lock()
		f := r.filter
		b.mu.Unlock()
		job, _, err := b.countReplay(ctx, f, req)
		return job, err
	}

	// Holding op, no stop or update comes between the count and the start.
	if err := r.op.lockContext(ctx); err != nil {
		return replay.Job{}, fmt.Errorf("sinkbus: integration %q: waiting for another change to end: %w", id, err)
	}
	defer r.op.Unlock()
	b.mu.Lock()
	d, f, in, runCtx := r.live, r.filter, r.in, b.runCtx
	running := d != nil && !r.gone && !b.closed
	b.mu.Unlock()
	if !running {
		return replay.Job{}, fmt.Errorf("%w: %q", ErrNotRunning, id)
	}
	job, head, err := b.countReplay(ctx, f, req)
	if err != nil {
		return replay.Job{}, err
	}
	b.mu.Lock()
	b.replays++
	jobID := fmt.Sprintf("replay-%d", b.replays)
	b.mu.Unlock()
	job, end := replay.NewJob(jobID, job.Matched)
	var ended atomic.Bool
	consumer := b.journal.Consumer(replay.ConsumerConfig{
		StartAt:     req.From,
		FromOldest:  req.From.IsZero(),
		Until:       req.To.Add(-1), // the range excludes To
		UntilOffset: head,
		MaxInFlight: b.concurrency(in),
		OrderKey:    orderKey(in),
		Decorate:    func(msg *message.Message) { msg.Metadata[sinks.MetaReplayed] = "true" },
		OnEnd:       func() { ended.Store(true) },
	})
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return replay.Job{}, fmt.Errorf("%w: %q", ErrNotRunning, id)
	}
	d.replays[consumer] = struct{}{}
	d.mu.Unlock()
	h := b.router.AddConsumerHandler(fmt.Sprintf("%s~%s", id, job.ID), Topic, consumer, d.routerHandler())
	if err := b.router.RunHandlers(runCtx); err != nil {
		d.forget(consumer)
		_ = consumer.Close()
		return replay.Job{}, err
	}
	noun := "matching events"
	if job.Matched == 1 {
		noun = "matching event"
	}
	b.log(id, ActionReplayStarted, fmt.Sprintf("%s: %d %s published from %s to %s.",
		job.ID, job.Matched, noun, fmtTime(req.From), fmtTime(req.To)))
	stopped := h.Stopped()
	b.background(func() {
		<-stopped // the consumer's channel closed: the range ended, or the replay was stopped
		d.forget(consumer)
		_ = consumer.Close()
		if ended.Load() {
			b.log(id, ActionReplayCompleted, job.ID+": every event of the range was settled.")
			end(nil)
		} else {
			b.log(id, ActionReplayAborted, job.ID+": the integration stopped before every event of the range was settled.")
			end(fmt.Errorf("%w: %s of %q", replay.ErrAborted, job.ID, id))
		}
	})
	return job, nil
}

// countReplay counts the events of req's range that f matches, up to the
// journal's head now, which it returns: the range ends there too, so that
// the count and the delivery agree, and a replay ends even on a clock that
// stands still (a test's).
func (b *Bus) countReplay(ctx context.Context, f *filter.Filter, req replay.Request) (replay.Job, uint64, error) {
	_, head := b.journal.Storage().Bounds(Topic)
	var job replay.Job
	err := b.journal.Scan(ctx, Topic, req.From, req.To, func(rec replay.Record) bool {
		if rec.Offset >= head {
			return false
		}
		if f.Match(rec.Metadata[sinks.MetaName], rec.Payload) {
			job.Matched++
		}
		return true
	})
	return job, head, err
}

// forget drops a replay that ended from the delivery.
func (d *delivery) forget(c *replay.Consumer) {
	d.mu.Lock()
	delete(d.replays, c)
	d.mu.Unlock()
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "the oldest retained event"
	}
	return t.UTC().Format(time.RFC3339)
}
