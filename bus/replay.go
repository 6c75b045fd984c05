package bus

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sinkbus/sinkbus/filter"
	"github.com/sinkbus/sinkbus/internal/logging"
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
	r, key, err := m.lookup(id)
	if err != nil {
		return replay.Job{}, err
	}
	if req.DryRun {
		b.mu.Lock()
		f, tenant := r.filter, r.in.Tenant
		b.mu.Unlock()
		job, _, _, err := b.countReplay(ctx, tenant, f, req)
		return tenantsJob(tenant, job), err
	}

	if b.forwarding(r) { // another replica delivers it
		b.mu.Lock()
		tenant := r.in.Tenant
		b.mu.Unlock()
		job, err := b.pg.forwardReplay(ctx, key, req)
		return tenantsJob(tenant, job), err
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
		return replay.Job{}, fmt.Errorf("%w: %s", ErrNotRunning, quoteID(id))
	}
	// The count finds where the range starts too: the consumer gets the
	// offset, so that once its handler is added it cannot fail to subscribe
	// (Watermill keeps a handler whose subscription failed, and every later
	// start fails on it).
	job, from, head, err := b.countReplay(ctx, in.Tenant, f, req)
	if err != nil {
		return replay.Job{}, err
	}
	b.mu.Lock()
	b.replays++
	jobID := fmt.Sprintf("replay-%d", b.replays)
	b.mu.Unlock()
	counted := job
	job, end := replay.NewJob(jobID, counted.Matched)
	job.From, job.To, job.Missing, job.Partial = counted.From, counted.To, counted.Missing, counted.Partial
	var ended atomic.Bool
	var lost atomic.Uint64
	decorate := func(msg *message.Message) { msg.Metadata[sinks.MetaReplayed] = "true" }
	onSkip, countSkipped := b.onSkip(in, decorate)
	consumer := b.journal.Consumer(replay.ConsumerConfig{
		Select:        selection(in.Tenant, f),
		OnSkip:        onSkip,
		CountSkipped:  countSkipped,
		SharedContext: true,
		StartOffset:   from,
		Until:         req.To.Add(-1), // the range excludes To
		UntilOffset:   head,
		MaxInFlight:   b.concurrency(in),
		OrderKey:      orderKey(in),
		Decorate:      decorate,
		OnEnd:         func() { ended.Store(true) },
		// Removed by the in-memory journal's bound before the replay got
		// to them.
		OnRetentionLoss: func(n uint64) { lost.Add(n) },
	})
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return replay.Job{}, fmt.Errorf("%w: %s", ErrNotRunning, quoteID(id))
	}
	d.replays[consumer] = struct{}{}
	d.mu.Unlock()
	h := b.router.AddConsumerHandler(fmt.Sprintf("%s~%s", key, job.ID), Topic, consumer, d.routerHandler())
	if err := b.router.RunHandlers(runCtx); err != nil {
		d.forget(consumer)
		_ = consumer.Close()
		return replay.Job{}, err
	}
	noun := "matching events"
	if job.Matched == 1 {
		noun = "matching event"
	}
	b.log(key, ActionReplayStarted, fmt.Sprintf("%s: %d %s published from %s to %s.%s",
		job.ID, job.Matched, noun, fmtTime(job.From), fmtTime(job.To), b.coverageNote(req, job, in.Tenant)))
	b.cfg.Logger.Info("Replay started", logging.IntegrationID, key, "replay", job.ID, "matched", job.Matched,
		"from", fmtTime(job.From), "to", fmtTime(job.To), "missing", job.Missing, "partial", job.Partial)
	stopped := h.Stopped()
	b.background(func() {
		<-stopped // the consumer's channel closed: the range ended, or the replay was stopped
		d.forget(consumer)
		_ = consumer.Close()
		if ended.Load() {
			msg := job.ID + ": every event of the range was settled."
			switch n := lost.Load(); {
			case n > 0 && in.Tenant != "":
				// Whose they were went with them: a count would tell the
				// tenant of other tenants' events.
				msg = job.ID + ": every event of the range still held was settled; some were removed from the journal before the replay reached them."
			case n > 0:
				msg = fmt.Sprintf("%s: every event of the range still held was settled; %d were removed from the journal before the replay reached them.", job.ID, n)
			}
			b.log(key, ActionReplayCompleted, msg)
			end(nil)
		} else {
			b.log(key, ActionReplayAborted, job.ID+": the integration stopped before every event of the range was settled.")
			end(fmt.Errorf("%w: %s of %s", replay.ErrAborted, job.ID, quoteID(id)))
		}
	})
	return tenantsJob(in.Tenant, job), nil
}

// tenantsJob is job as a tenant's integration tells it: without how many
// events of the range the journal no longer holds, since whose they were
// went with them, and a count would tell of other tenants' events.
// Partial still says the range is incomplete.
func tenantsJob(tenant string, job replay.Job) replay.Job {
	if tenant != "" {
		job.Missing = 0
	}
	return job
}

// countReplay counts the events of req's range that an integration of
// tenant receives and f matches, up to the journal's head now, which it
// returns: the range ends there too, so that the count and the delivery
// agree, and a replay ends even on a clock that stands still (a test's).
// It returns where the range starts, the first offset held at or after
// req.From. The job also says what of the range the journal still holds
// (From, To, Missing, Partial).
func (b *Bus) countReplay(ctx context.Context, tenant string, f *filter.Filter, req replay.Request) (job replay.Job, start, head uint64, err error) {
	st := b.journal.Storage()
	_, head = st.Bounds(Topic)
	job = replay.Job{From: req.From, To: req.To}
	// When events just before the first one held are gone, some of them may
	// have been in the range: their times went with them, so the range
	// covered starts at the first held.
	start, startGone, _, err := b.seekHeld(req.From)
	if err != nil {
		return job, 0, head, err
	}
	var last uint64 // the offset of the last event of the range held
	gaps := 0
	err = b.journal.Scan(ctx, Topic, req.From, req.To, func(rec replay.Record) bool {
		if rec.Offset >= head {
			return false
		}
		switch {
		case last == 0 && startGone:
			job.From = rec.Time
		case last != 0:
			gaps += int(rec.Offset - last - 1)
		}
		last = rec.Offset
		if admits(tenant, rec.Metadata[sinks.MetaTenant]) && f.Match(rec.Metadata[sinks.MetaName], rec.Payload) {
			job.Matched++
		}
		return true
	})
	if last == 0 && startGone {
		job.From = job.To // nothing of the range is held
	}
	job.Missing = gaps
	job.Partial = startGone || gaps > 0
	return job, start, head, err
}

// seekHeld returns the offset of the first event the journal holds
// published at or after from, and when it was published (zero when there is
// none). gone reports that events just before it are no longer held
// (retention, an in-memory journal's bound) and that some may have been
// published at or after from: from is before the first held.
func (b *Bus) seekHeld(from time.Time) (start uint64, gone bool, at time.Time, err error) {
	st := b.journal.Storage()
	if start, err = st.Seek(Topic, from); err != nil {
		return 0, false, at, err
	}
	if start > 1 {
		before, err := st.Read(Topic, start-1, 2)
		if err != nil {
			return 0, false, at, err
		}
		gone = len(before) == 0 || before[0].Offset != start-1
		for _, r := range before {
			if r.Offset == start {
				at = r.Time
			}
		}
	}
	if at.IsZero() {
		if recs, err := st.Read(Topic, start, 1); err != nil {
			return 0, false, at, err
		} else if len(recs) > 0 {
			at = recs[0].Time
		}
	}
	// Asked from the first held event's own time, what is gone is older.
	gone = gone && (at.IsZero() || from.Before(at))
	return start, gone, at, nil
}

// coverageNote says, for the replay_started entry of an integration of
// tenant, what of the range asked for the journal no longer holds; empty
// when it holds it all. A tenant's integration is not told how many
// (tenantsJob).
func (b *Bus) coverageNote(req replay.Request, job replay.Job, tenant string) string {
	if !job.Partial {
		return ""
	}
	var gone []string
	if !job.From.Equal(req.From) || job.Missing == 0 {
		gone = append(gone, "the events published before "+fmtTime(job.From))
	}
	switch {
	case job.Missing > 0 && tenant != "":
		gone = append(gone, "some events published within the range")
	case job.Missing > 0:
		gone = append(gone, fmt.Sprintf("%d events published within the range", job.Missing))
	}
	why := "retention removed them"
	if b.memory != nil {
		why = "the in-memory journal holds MemoryBytes of events; a DataDir keeps them for the whole Retention"
	}
	return fmt.Sprintf(" Asked from %s: the journal no longer holds %s (%s).", fmtTime(req.From), strings.Join(gone, ", nor "), why)
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
