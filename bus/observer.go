package bus

import (
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/replay/segments"
)

// Observer is told what happens to each delivery, for metrics (package
// bus/metrics implements it). The bus calls it from its delivery
// goroutines, concurrently: its methods must return quickly and must not
// call the Bus. It is the application's: integrations are named by their
// ref (Integration.Ref, "acme/erp-sync" for tenant acme's), and the counts
// it gets cover every tenant.
type Observer interface {
	// Attempted is called after every delivery attempt: retries, replays
	// and manual retries of rejected events included.
	Attempted(integrationType string, a middleware.Attempt)
	// Rejected is called when an event was stored in an integration's
	// rejected store.
	Rejected(integrationID, integrationType string, e middleware.RejectedEvent)
	// Skipped is called when an event does not match an integration's
	// filter.
	Skipped(integrationID, integrationType string, msg *message.Message)
	// SkippedWhileOpen is called when an integration with SkipWhileOpen
	// dropped an event because its circuit was open (the integration log
	// has an event_skipped entry for it).
	SkippedWhileOpen(integrationID, integrationType string, msg *message.Message)
	// LostToRetention is called when the journal removed events before the
	// integration read them (retention, or an in-memory journal's
	// Config.MemoryBytes), with how many: they will not be delivered. The
	// integration log has an events_lost_to_retention entry for them.
	LostToRetention(integrationID, integrationType string, lost uint64)
	// Throttled is called when an event waits wait for its integration's
	// rate limit (Integration.RateLimit) before its delivery.
	Throttled(integrationID, integrationType string, wait time.Duration)
	// JournalDamaged is called when the journal in DataDir finds records it
	// cannot keep: a tail a crash tore, cut off when the bus opens, or a
	// corrupt segment whose records after the damage are skipped. It is
	// logged too (an error: through slog.Default() when Config.Logger is nil). It
	// may be called during New, before the bus exists.
	JournalDamaged(d segments.Damage)
	// JournalSynced is called after each fsync of the journal in DataDir
	// that made records durable, with how many and how long it took. Under
	// the default Sync a Publish waits for one: its latency is most of
	// Publish's, and the records per fsync show how well concurrent
	// publishers share them. It runs on the publish path: return quickly.
	JournalSynced(s segments.Synced)
}

// SkipCounter is an Observer that counts skipped events without looking at
// them. The bus calls its SkippedEvents instead of Skipped, with how many
// events an integration's filter skipped since the last call, and makes no
// message of them: the cost of an event an integration does not observe
// stays a fraction of a delivery's. bus/metrics is one.
type SkipCounter interface {
	SkippedEvents(integrationID, integrationType string, n int)
}

// NopObserver ignores everything. Embed it in an Observer that needs only
// some of the methods: it keeps compiling when Observer gains one.
type NopObserver struct{}

var _ Observer = NopObserver{}

func (NopObserver) Attempted(string, middleware.Attempt)              {}
func (NopObserver) Rejected(string, string, middleware.RejectedEvent) {}
func (NopObserver) Skipped(string, string, *message.Message)          {}
func (NopObserver) SkippedWhileOpen(string, string, *message.Message) {}
func (NopObserver) LostToRetention(string, string, uint64)            {}
func (NopObserver) Throttled(string, string, time.Duration)           {}
func (NopObserver) JournalDamaged(segments.Damage)                    {}
func (NopObserver) JournalSynced(segments.Synced)                     {}
