package replay

import "time"

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
	// Done is closed when every event of the range has been settled
	// (delivered, rejected or skipped); nil for a dry run.
	Done <-chan struct{}
}
