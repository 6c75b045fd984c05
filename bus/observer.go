package bus

import (
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sinkbus/sinkbus/middleware"
)

// Observer is told what happens to each delivery, for metrics (package
// bus/metrics implements it). The bus calls it from its delivery
// goroutines, concurrently: its methods must return quickly and must not
// call the Bus.
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
}
