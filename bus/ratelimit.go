package bus

import (
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"golang.org/x/time/rate"

	"github.com/sinkbus/sinkbus/field"
	"github.com/sinkbus/sinkbus/internal/logging"
	"github.com/sinkbus/sinkbus/middleware"
)

// ActionRateLimited is the integration log entry written when deliveries
// begin to wait for the integration's rate limit: once per spell of
// throttling (a wait after a minute without any), so that a limit that
// holds for hours writes one entry, not thousands.
const ActionRateLimited = "rate_limited"

// MaxRateLimit bounds RateLimit.PerSecond and RateLimit.Burst.
const MaxRateLimit = 1_000_000

// throttleSpell is how long deliveries must go without waiting for a new
// wait to start a new spell of throttling (a new log entry).
const throttleSpell = time.Minute

// RateLimit caps the rate at which an integration's events reach its
// destination: a token bucket of Burst events filled at PerSecond. It
// holds across live delivery, replays and manual retries of rejected
// events; an event over the limit waits for its turn, it never fails for
// it. It paces events, not attempts: the retries of one event are paced by
// its backoff (and a destination's Retry-After, honoured as ever). Its
// JSON form is {"per_second": 10, "burst": 5}.
type RateLimit struct {
	// PerSecond is the sustained rate in events per second; fractions are
	// allowed (0.5 is one event every two seconds). Zero means no limit.
	PerSecond float64 `json:"per_second"`
	// Burst is how many events may go at once after a quiet spell. Zero
	// means 1: events are spaced evenly, never more than PerSecond within
	// any second.
	Burst int `json:"burst,omitempty"`
}

// validate adds the problems of l to p, each field named prefix+name.
func (l RateLimit) validate(p *field.Problems, prefix string) {
	if math.IsNaN(l.PerSecond) || l.PerSecond < 0 || l.PerSecond > MaxRateLimit {
		p.Add(prefix+"per_second", "must be between 0 (no limit) and %d", MaxRateLimit)
	}
	switch {
	case l.Burst < 0 || l.Burst > MaxRateLimit:
		p.Add(prefix+"burst", "must be between 0 and %d", MaxRateLimit)
	case l.Burst > 0 && l.PerSecond == 0:
		p.Add(prefix+"burst", "needs %sper_second", prefix)
	}
}

// limiter returns the token bucket of l, nil when l sets no limit.
func (l RateLimit) limiter() *rate.Limiter {
	if l.PerSecond <= 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(l.PerSecond), max(l.Burst, 1))
}

func (l RateLimit) String() string {
	return fmt.Sprintf("%s events/s (burst %d)", strconv.FormatFloat(l.PerSecond, 'f', -1, 64), max(l.Burst, 1))
}

// throttleReporter makes the waits of one integration's rate limit
// visible: every wait to the Observer (metrics), the first of each spell
// of throttling to the integration log and the bus's logger.
type throttleReporter struct {
	b     *Bus
	id    string
	typ   string
	limit RateLimit

	mu   sync.Mutex
	last time.Time // end of the latest wait
}

func (b *Bus) throttleReporter(in Integration) func(*message.Message, time.Duration) {
	t := &throttleReporter{b: b, id: in.Ref(), typ: in.Type(), limit: in.RateLimit}
	return t.waits
}

// waits reports that msg waits d for the rate limit.
func (t *throttleReporter) waits(msg *message.Message, d time.Duration) {
	if obs := t.b.cfg.Observer; obs != nil {
		obs.Throttled(t.id, t.typ, d)
	}
	now := t.b.cfg.Clock.Now()
	t.mu.Lock()
	newSpell := t.last.IsZero() || now.Sub(t.last) >= throttleSpell
	if end := now.Add(d); end.After(t.last) {
		t.last = end
	}
	t.mu.Unlock()
	if !newSpell {
		return
	}
	reason := "Deliveries wait for the rate limit of " + t.limit.String() + "."
	t.b.logEntry(t.id, middleware.LogEntry{Action: ActionRateLimited, Reason: reason, EventID: msg.UUID, CreatedAt: now})
	t.b.cfg.Logger.Info("Deliveries wait for the integration's rate limit",
		logging.IntegrationID, t.id, logging.EventID, msg.UUID, "rate_limit", t.limit.String(), "wait", d)
}
