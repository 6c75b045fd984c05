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
	// are not delivered again; ask for a new replay. On PostgreSQL a replica
	// closing or losing the integration's lease hands the replay over
	// instead.
	ActionReplayAborted = "replay_aborted"
	// ActionReplayHandedOver: on PostgreSQL, the replica running a replay
	// stopped delivering the integration (it closed, or gave up or lost
	// the lease); the replica that takes the integration over resumes it.
	ActionReplayHandedOver = "replay_handed_over"
	// ActionReplayResumed: on PostgreSQL, a replica that took the
	// integration over resumes a replay where the last one stopped.
	ActionReplayResumed = "replay_resumed"
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
//
// On PostgreSQL (Config.Postgres) a replay is the integration's, not the
// replica's: asked of any replica, it runs on the one delivering the
// integration, and when that one closes, dies or loses the lease, the
// replica that takes the integration over resumes it where it stopped
// (ActionReplayHandedOver, ActionReplayResumed): what the first delivered
// after its last saved progress is delivered again. Done is then closed
// when the replay ends wherever it runs, or, on the replica that handed it
// over, when that replica closes.
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
	job, _, err := m.replayHere(ctx, r, id, key, req)
	return job, err
}

// replaySpec is what a replay covers, fixed when it is asked: its range,
// what the journal holds of it, and where it starts and ends there. On
// PostgreSQL it is the job of the replay's row, which a replica taking the
// integration over resumes.
type replaySpec struct {
	Matched int       `json:"matched"`
	From    time.Time `json:"from,omitzero"`
	To      time.Time `json:"to"`
	Missing int       `json:"missing,omitempty"`
	Partial bool      `json:"partial,omitempty"`
	Start   uint64    `json:"start"` // the first offset of the range
	Until   uint64    `json:"until"` // the journal's head when asked: the range ends before it
}

// replayHere starts a replay of r, which this replica delivers; row is its
// row on PostgreSQL (0 otherwise).
func (m *Integrations) replayHere(ctx context.Context, r *runner, id, key string, req replay.Request) (replay.Job, int64, error) {
	b := m.b
	// Holding op, no stop or update comes between the count and the start.
	if err := r.op.lockContext(ctx); err != nil {
		return replay.Job{}, 0, fmt.Errorf("sinkbus: integration %q: waiting for another change to end: %w", id, err)
	}
	defer r.op.Unlock()
	b.mu.Lock()
	d, f, in := r.live, r.filter, r.in
	running := d != nil && !r.gone && !b.closed
	b.mu.Unlock()
	if !running {
		return replay.Job{}, 0, fmt.Errorf("%w: %s", ErrNotRunning, quoteID(id))
	}
	// The count finds where the range starts too: the consumer gets the
	// offset, so that once its handler is added it cannot fail to subscribe
	// (Watermill keeps a handler whose subscription failed, and every later
	// start fails on it).
	counted, from, head, err := b.countReplay(ctx, in.Tenant, f, req)
	if err != nil {
		return replay.Job{}, 0, err
	}
	spec := replaySpec{Matched: counted.Matched, From: counted.From, To: counted.To, Missing: counted.Missing,
		Partial: counted.Partial, Start: from, Until: head}
	var row int64
	var jobID string
	if b.pg != nil {
		// The replay is the integration's: a row, whose id names it on
		// every replica.
		if row, err = b.pg.beginReplay(ctx, key, spec); err != nil {
			return replay.Job{}, 0, err
		}
		jobID = fmt.Sprintf("replay-%d", row)
	} else {
		b.mu.Lock()
		b.replays++
		jobID = fmt.Sprintf("replay-%d", b.replays)
		b.mu.Unlock()
	}
	job, err := b.runReplay(d, f, in, id, jobID, row, spec, func(job replay.Job) {
		noun := "matching events"
		if job.Matched == 1 {
			noun = "matching event"
		}
		b.log(key, ActionReplayStarted, fmt.Sprintf("%s: %d %s published from %s to %s.%s",
			job.ID, job.Matched, noun, fmtTime(job.From), fmtTime(job.To), b.coverageNote(req, job, in.Tenant)))
		b.cfg.Logger.Info("Replay started", logging.IntegrationID, key, "replay", job.ID, "matched", job.Matched,
			"from", fmtTime(job.From), "to", fmtTime(job.To), "missing", job.Missing, "partial", job.Partial)
	})
	if err != nil {
		if row != 0 {
			b.pg.endReplay(key, row, fmt.Errorf("%w: %s did not start: %w", replay.ErrAborted, jobID, err), nil)
		}
		return replay.Job{}, 0, err
	}
	return tenantsJob(in.Tenant, job), row, nil
}

// runReplay runs the replay spec of in through d; in's op is held. Once it
// runs, announce logs it, before anything can log its end. A replay
// with a row (on PostgreSQL) keeps its progress as the cursor of a group of
// its own, fenced by the integration's lease, and one that stops because
// this replica hands the integration over (its lease is lost or given up,
// or the bus closes) goes on where the integration goes next.
func (b *Bus) runReplay(d *delivery, f *filter.Filter, in Integration, id, jobID string, row int64, spec replaySpec,
	announce func(replay.Job)) (replay.Job, error) {
	key := in.Ref()
	job, end := replay.NewJob(jobID, spec.Matched)
	job.From, job.To, job.Missing, job.Partial = spec.From, spec.To, spec.Missing, spec.Partial
	var group string
	if row != 0 {
		group = b.pg.replayGroup(key, row)
	}
	var ended atomic.Bool
	var lost atomic.Uint64
	decorate := func(msg *message.Message) { msg.Metadata[sinks.MetaReplayed] = "true" }
	onSkip, countSkipped := b.onSkip(in, decorate)
	consumer := b.journal.Consumer(replay.ConsumerConfig{
		Group:         group,
		Select:        selection(in.Tenant, f),
		OnSkip:        onSkip,
		CountSkipped:  countSkipped,
		SharedContext: true,
		StartOffset:   spec.Start,
		Until:         spec.To.Add(-1), // the range excludes To
		UntilOffset:   spec.Until,
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
	d.replays[consumer] = row
	d.mu.Unlock()
	h, routing, err := b.addHandler(fmt.Sprintf("%s~%s", key, job.ID), consumer, d.routerHandler())
	if !routing && err == nil {
		err = fmt.Errorf("%w: %s: the bus is stopping", ErrNotRunning, quoteID(id))
	}
	if err != nil {
		d.forget(consumer)
		_ = consumer.Close()
		return replay.Job{}, err
	}
	announce(job)
	stopped := h.Stopped()
	b.background(func() {
		<-stopped // the consumer's channel closed: the range ended, or the replay was stopped
		_ = consumer.Close()
		// Forgotten once its row is settled: until then no round resumes it
		// (resumeReplays).
		defer d.forget(consumer)
		switch {
		case ended.Load():
			msg := job.ID + ": every event of the range was settled."
			switch n := lost.Load(); {
			case n > 0 && in.Tenant != "":
				// Whose they were went with them: a count would tell the
				// tenant of other tenants' events.
				msg = job.ID + ": every event of the range still held was settled; some were removed from the journal before the replay reached them."
			case n > 0:
				msg = fmt.Sprintf("%s: every event of the range still held was settled; %d were removed from the journal before the replay reached them.", job.ID, n)
			}
			// On PostgreSQL the entry is written with the replay's end: a
			// replica waiting for it there finds the log saying so.
			entry := b.logLine(ActionReplayCompleted, msg)
			switch {
			case row == 0:
				b.logEntry(key, entry)
			case !b.pg.endReplay(key, row, nil, &entry):
				// Another replica holds the integration now: it finds the
				// range settled as far as this one saved, and ends it.
				go func() { end(b.pg.awaitReplay(row)) }()
				return
			}
			end(nil)
		case row != 0 && (d.handover.Load() || b.closing()):
			b.log(key, ActionReplayHandedOver, job.ID+": this replica no longer delivers the integration; the replica that takes it over resumes the replay where it stopped.")
			go func() { end(b.pg.awaitReplay(row)) }() // not Close's to wait for
		default:
			err := fmt.Errorf("%w: %s of %s", replay.ErrAborted, job.ID, quoteID(id))
			entry := b.logLine(ActionReplayAborted, job.ID+": the integration stopped before every event of the range was settled.")
			// Ended already (a change through another replica aborted it),
			// it is still this replica's to say that it stopped.
			if row == 0 || !b.pg.endReplay(key, row, err, &entry) {
				b.logEntry(key, entry)
			}
			end(err)
		}
	})
	return job, nil
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

// runsReplay reports whether the replay of row runs through r's delivery.
func (r *runner) runsReplay(row int64) bool {
	r.b.mu.Lock()
	d := r.live
	r.b.mu.Unlock()
	return d != nil && d.runs(row)
}

// runs reports whether the replay of row runs through d.
func (d *delivery) runs(row int64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, r := range d.replays {
		if r == row {
			return true
		}
	}
	return false
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "the oldest retained event"
	}
	return t.UTC().Format(time.RFC3339)
}
