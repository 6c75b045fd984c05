package bus

import (
	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/sinks"
)

// Effective is what an integration runs with, each setting as it is in
// force, and which of them come from a default. Reads show it; the saved
// integration keeps what was set, so a setting left to its default follows
// the default (an empty OrderKey follows the sink's destination when the
// configuration changes).
type Effective struct {
	// OrderKey is the order key in force: Integration.OrderKey, else the key
	// the sink's destination keeps order by (an SQS FIFO queue orders by its
	// message group: "tenant" unless fifo_group_key says otherwise), else ""
	// (unordered).
	OrderKey string `json:"order_key,omitempty"`
	// Concurrency is how many deliveries run at once.
	Concurrency int `json:"concurrency"`
	// Timeout bounds each delivery attempt.
	Timeout sinks.Duration `json:"timeout"`
	// Defaults names, by their JSON names, the settings above that the
	// integration leaves to a default: "order_key", "concurrency",
	// "timeout".
	Defaults []string `json:"defaults,omitempty"`
}

// isZero reports whether e is unset, as on an integration not read from a
// bus.
func (e Effective) isZero() bool {
	return e.OrderKey == "" && e.Concurrency == 0 && e.Timeout == 0 && len(e.Defaults) == 0
}

// shown is in as reads show it: secrets masked, Effective set.
func (b *Bus) shown(in Integration) Integration {
	out := in.Masked()
	e := Effective{OrderKey: in.OrderKey, Concurrency: in.Concurrency, Timeout: sinks.Duration(in.Delivery.Timeout)}
	if e.OrderKey == "" {
		if k, ok := in.Sink.(sinks.OrderKeyer); ok && orderKeyFunc(k.DefaultOrderKey()) != nil {
			e.OrderKey = k.DefaultOrderKey()
		}
		e.Defaults = append(e.Defaults, "order_key")
	}
	if e.Concurrency <= 0 {
		e.Concurrency = b.concurrency(in)
		e.Defaults = append(e.Defaults, "concurrency")
	}
	if e.Timeout == 0 {
		t := attemptTimeout(in.Sink)
		if t <= 0 {
			t = middleware.DefaultTimeout
		}
		e.Timeout = sinks.Duration(t)
		e.Defaults = append(e.Defaults, "timeout")
	}
	out.Effective = e
	return out
}
