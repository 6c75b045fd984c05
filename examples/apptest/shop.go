// Package apptest is a small application's code, and its tests
// (shop_test.go) show how an application tests what it hands to sinkbus
// with bustest: an in-memory bus, a clock that moves only when told, a sink
// that records and fails on demand.
//
//	go test ./examples/apptest
package apptest

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/sinks"
)

// Shop publishes its orders' events through a bus.Publisher: a *bus.Bus
// in the application, bustest's Bus in its tests.
type Shop struct{ Bus bus.Publisher }

// PlaceOrder publishes order.created.
func (s Shop) PlaceOrder(ctx context.Context, id string, total float64) error {
	payload, err := json.Marshal(map[string]any{"order_id": id, "total": total})
	if err != nil {
		return err
	}
	return s.Bus.Publish(ctx, bus.Event{ID: id + "-created", Name: "order.created", Tenant: "acme", Payload: payload})
}

// Mailer sends an e-mail; ErrNoSuchAddress means it never will.
type Mailer func(ctx context.Context, to, subject string) error

// ErrNoSuchAddress is a Mailer's answer for an address that does not exist.
var ErrNoSuchAddress = fmt.Errorf("no such address")

// HandleConfirmations sends an order confirmation for each order.created,
// through the bus's delivery chain: a failure is retried, an address that
// does not exist is rejected at once.
func HandleConfirmations(b *bus.Bus, send Mailer) error {
	return b.Handle("confirmations", []string{"order.created"}, func(ctx context.Context, e bus.Event) error {
		var o struct {
			OrderID string `json:"order_id"`
		}
		if err := json.Unmarshal(e.Payload, &o); err != nil {
			return sinks.Permanent(err)
		}
		err := send(ctx, "customer@example.com", "Your order "+o.OrderID)
		if err == ErrNoSuchAddress {
			return sinks.Permanent(err)
		}
		return err
	})
}
