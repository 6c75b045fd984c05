package bus

import (
	"context"
	"errors"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sinkbus/sinkbus/field"
	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/replay"
)

// Shared is a store the replicas of an application share
// (Config.Postgres); *Postgres is the one there is. The bus reaches the
// code behind it only through this interface, so that the linker drops it,
// and the database driver with it, from a program that never names a
// *Postgres: a webhook-only program stays the size it was.
type Shared interface {
	open(b *Bus) (replicas, error)
	problems(p *field.Problems)
}

// replicas is what the bus asks of the store it shares with the other
// replicas: who delivers which integration, and forwarding to the one that
// does.
type replicas interface {
	run(ctx context.Context)
	close() error
	closeJournal() error
	closePool()
	holds(ref string) bool
	fenceAttempts(ref string, publish message.HandlerFunc) message.HandlerFunc
	checkSink(in Integration, chain *middleware.Chain) error
	exclusive(ctx context.Context, name string, fn func() error) error
	forwarding(r *runner) bool
	forwardRetry(ctx context.Context, ref, eventID string) error
	forwardReplay(ctx context.Context, ref string, req replay.Request) (replay.Job, error)
	beginReplay(ctx context.Context, ref string, spec replaySpec) (row int64, err error)
	replayGroup(ref string, row int64) string
	// endReplay ends replay row, writing entry (when not nil) to ref's log
	// with it; false when it had ended, or the lease is another's.
	endReplay(ref string, row int64, err error, entry *middleware.LogEntry) bool
	awaitReplay(row int64) error
	forwardCircuit(ctx context.Context, m *Integrations, id string, reset bool) (middleware.BreakerState, bool)
	freshCursor(r *runner) error
	freshRef(ref string)
	dedupe() SharedDedupe
	sync(ctx context.Context) error
}

// errStale is what a change fails with when another replica changed the
// integration after this one read it: Bus.change makes it again on what
// the database holds.
var errStale = errors.New("sinkbus: the integration was changed through another replica meanwhile")

// forwarding says whether a request about r goes to the replica that
// delivers it (another one, on a shared store).
func (b *Bus) forwarding(r *runner) bool { return b.pg != nil && b.pg.forwarding(r) }

// forwardCircuit asks the replica delivering id for its circuit (and
// resets it); ok is false when the caller answers with its own breaker.
func (b *Bus) forwardCircuit(ctx context.Context, m *Integrations, id string, reset bool) (st middleware.BreakerState, ok bool) {
	if b.pg == nil {
		return st, false
	}
	return b.pg.forwardCircuit(ctx, m, id, reset)
}

// freshCursor reads r's cursor again where another replica may move it.
func (b *Bus) freshCursor(r *runner) error {
	if b.pg == nil {
		return nil
	}
	return b.pg.freshCursor(r)
}

// freshRef is freshCursor by ref, for the journal view.
func (b *Bus) freshRef(ref string) {
	if b.pg != nil {
		b.pg.freshRef(ref)
	}
}

// SharedDedupe returns the dedupe window in the database, nil without
// Config.Postgres.
func (b *Bus) SharedDedupe() SharedDedupe {
	if b.pg == nil {
		return nil
	}
	return b.pg.dedupe()
}
