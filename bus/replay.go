package bus

import (
	"context"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sinkbus/sinkbus/replay"
	"github.com/sinkbus/sinkbus/sinks"
)

// Replay delivers again the events published in the request's range that
// match the integration's filter, through the same middleware and sink,
// marked as replayed (sinks.MetaReplayed; the webhook sink sends
// X-Sinkbus-Replayed). Live delivery goes on beside it. A dry run only
// counts. The integration must be running.
func (m *Integrations) Replay(ctx context.Context, id string, req replay.Request) (replay.Job, error) {
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
	// The range also ends at what is published now, so that the count and
	// the delivery agree, and a replay ends even on a clock that stands
	// still (a test's).
	_, head := b.journal.Storage().Bounds(Topic)
	job := replay.Job{}
	err = b.journal.Scan(ctx, Topic, req.From, req.To, func(rec replay.Record) bool {
		if rec.Offset >= head {
			return false
		}
		if r.filter.Match(rec.Metadata[sinks.MetaName], rec.Payload) {
			job.Matched++
		}
		return true
	})
	if err != nil || req.DryRun {
		return job, err
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	if b.runners[id] != r || r.live == nil {
		return replay.Job{}, fmt.Errorf("%w: %q", ErrNotRunning, id)
	}
	d := r.live
	b.replays++
	job.ID = fmt.Sprintf("replay-%d", b.replays)
	done := make(chan struct{})
	job.Done = done
	cc := replay.ConsumerConfig{
		StartAt:     req.From,
		FromOldest:  req.From.IsZero(),
		Until:       req.To.Add(-1), // the range excludes To
		UntilOffset: head,
		MaxInFlight: r.concurrency(),
		OrderKey:    orderKeyFunc(r.orderKey()),
		Decorate:    func(msg *message.Message) { msg.Metadata[sinks.MetaReplayed] = "true" },
		OnEnd:       func() { close(done) },
	}
	consumer := b.journal.Consumer(cc)
	h := b.router.AddConsumerHandler(fmt.Sprintf("%s~%s", id, job.ID), Topic, consumer, d.routerHandler())
	if err := b.router.RunHandlers(b.runCtx); err != nil {
		return replay.Job{}, err
	}
	d.replays = append(d.replays, consumer)
	b.log(id, "replay_started", fmt.Sprintf("%s: %d events published from %s to %s.",
		job.ID, job.Matched, fmtTime(req.From), fmtTime(req.To)))
	go func() {
		select {
		case <-done:
			b.log(id, "replay_completed", job.ID+": every event of the range was settled.")
		case <-h.Stopped():
		}
	}()
	return job, nil
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "the oldest retained event"
	}
	return t.UTC().Format(time.RFC3339)
}
