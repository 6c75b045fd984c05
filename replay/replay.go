package replay

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Request asks for the events published in [From, To) to be delivered again
// to one integration, through its filter, middleware and sink, marked as
// replayed.
//
// The range is in the journal's time: when each event was appended
// (Record.Time, on the journal's clock). That is the published_at the bus
// stamps on an event (within the moment Publish takes), unless the
// application set Event.PublishedAt itself; it is never the time the
// application says the event occurred. The journal never lets that time go
// backwards, so a range is one contiguous run of the journal.
type Request struct {
	// From is inclusive; zero means the oldest retained event.
	From time.Time
	// To is exclusive; zero means now. Either way the range ends with the
	// last event published when the replay is asked for.
	To time.Time
	// DryRun only counts the events that would be delivered.
	DryRun bool
}

// Job is a replay under way.
type Job struct {
	// ID names the replay in the integration log.
	ID string
	// Matched is how many events in the range match the integration's
	// filter: how many the replay delivers.
	Matched int
	// From and To are the range the replay covers: the request's, To
	// ending at the latest when the replay was asked for, unless the
	// journal no longer holds the beginning of it (retention, or an
	// in-memory journal's bound removed it). From is then when the oldest
	// event it still holds of the range was published (To when it holds
	// none), and Partial is set. A zero From is the oldest event published.
	From, To time.Time
	// Missing is how many events published between From and To the journal
	// no longer holds: an in-memory journal removes the events every
	// integration has delivered first when it needs room. The replay cannot
	// deliver them; Partial is set. A tenant's integration is not told how
	// many (zero): whose they were went with them, and a count would tell
	// the tenant of other tenants' events.
	Missing int
	// Partial reports that the journal no longer holds the whole range
	// asked for: it was asked for more than it covers.
	Partial bool
	// Done is closed when the replay ended: when every event of the range
	// has been settled (delivered, rejected or skipped), or when it was
	// aborted (see Err); nil for a dry run.
	Done <-chan struct{}

	end *jobEnd
}

// ErrAborted is a replay's Err when it ended before every event of its range
// was settled: the integration stopped, changed or was deleted, or the bus
// closed. The events not settled are not delivered again; ask for a new
// replay.
var ErrAborted = errors.New("sinkbus: replay aborted before every event of its range was settled")

type jobEnd struct {
	done chan struct{}
	err  error
}

// NewJob returns a job under way and the function that ends it with err
// (nil: completed; ErrAborted, or an error wrapping it: aborted). For
// implementations of replay; applications get their jobs from the bus.
func NewJob(id string, matched int) (Job, func(err error)) {
	e := &jobEnd{done: make(chan struct{})}
	var once sync.Once
	return Job{ID: id, Matched: matched, Done: e.done, end: e}, func(err error) {
		once.Do(func() {
			e.err = err
			close(e.done)
		})
	}
}

// Err returns nil while the replay runs or once it completed, and an error
// matching ErrAborted once it was aborted.
func (j Job) Err() error {
	if j.end == nil {
		return nil
	}
	select {
	case <-j.end.done:
		return j.end.err
	default:
		return nil
	}
}

// Wait blocks until the replay ends and returns Err, or ctx's error first.
// A dry run's job returns at once.
func (j Job) Wait(ctx context.Context) error {
	if j.end == nil {
		return nil
	}
	select {
	case <-j.end.done:
		return j.end.err
	case <-ctx.Done():
		return ctx.Err()
	}
}
