package admin

import (
	"sync"
	"time"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/sinks"
)

// window is how far back Activity counts, in minutes.
const window = 60

// Activity counts each integration's delivery attempts of the last hour,
// delivered and failed, for the admin page's list. It is a bus.Observer:
// give it to bus.Config.Observer (with bus.Observers beside other
// observers) and to Options.Activity. The bus's Prometheus metrics
// (bus/metrics) count since the process started; the page shows the last
// hour without a Prometheus server to ask.
type Activity struct {
	bus.NopObserver

	now func() time.Time // time.Now unless a test's

	mu   sync.Mutex
	refs map[string]*minutes // by integration ref
	last int64               // the newest minute seen, for pruning
}

// minutes is one integration's counts, a bucket per minute of the hour.
type minutes [window]struct {
	minute            int64 // Unix minute the bucket counts; older is stale
	delivered, failed int
}

// Counts is an integration's delivery attempts in the last hour.
type Counts struct {
	Delivered int
	// Failed counts the attempts that failed: retries, and events
	// rejected.
	Failed int
}

// NewActivity returns an empty Activity.
func NewActivity() *Activity { return &Activity{now: time.Now, refs: map[string]*minutes{}} }

var _ bus.SkipCounter = (*Activity)(nil)

// SkippedEvents implements bus.SkipCounter. The page counts no skipped
// events; being a SkipCounter spares the bus a message per skipped event.
func (a *Activity) SkippedEvents(string, string, int) {}

// Attempted implements bus.Observer.
func (a *Activity) Attempted(_ string, at middleware.Attempt) {
	m := a.now().Unix() / 60
	a.mu.Lock()
	defer a.mu.Unlock()
	if m > a.last {
		a.last = m
		a.prune(m)
	}
	ms := a.refs[at.IntegrationID]
	if ms == nil {
		ms = &minutes{}
		a.refs[at.IntegrationID] = ms
	}
	b := &ms[m%window]
	if b.minute != m {
		b.minute, b.delivered, b.failed = m, 0, 0
	}
	if at.Class == sinks.ClassDelivered {
		b.delivered++
	} else {
		b.failed++
	}
}

// prune forgets the integrations with nothing in the hour before minute
// m, deleted ones among them; a.mu is held.
func (a *Activity) prune(m int64) {
	for ref, ms := range a.refs {
		if sum(ms, m) == (Counts{}) {
			delete(a.refs, ref)
		}
	}
}

// Last returns the attempts of the integration of ref (Integration.Ref)
// in the last hour.
func (a *Activity) Last(ref string) Counts {
	m := a.now().Unix() / 60
	a.mu.Lock()
	defer a.mu.Unlock()
	ms := a.refs[ref]
	if ms == nil {
		return Counts{}
	}
	return sum(ms, m)
}

// sum adds the buckets of the hour ending with minute m.
func sum(ms *minutes, m int64) Counts {
	var c Counts
	for _, b := range ms {
		if b.minute > m-window && b.minute <= m {
			c.Delivered += b.delivered
			c.Failed += b.failed
		}
	}
	return c
}
