package bus_test

import (
	"context"
	"fmt"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/sinks/webhook"
)

// An application declares the integrations it owns and reconciles them on
// every start: the first start creates them, the next ones change nothing
// unless the declaration did.
func ExampleIntegrations_Reconcile() {
	declared := []bus.Integration{{
		ID:       "shipping",
		Observes: []string{"order.fulfilled"},
		Sink:     webhook.Config{URL: "https://erp.example.com/hooks", SecretKey: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
	}}
	b, err := bus.New(bus.Config{})
	if err != nil {
		panic(err)
	}
	defer b.Close()
	ctx := context.Background()

	for range 2 { // two starts
		res, err := b.Integrations().Reconcile(ctx, "shop", declared)
		if err != nil {
			panic(err)
		}
		fmt.Println(res)
	}
	declared[0].Observes = append(declared[0].Observes, "order.cancelled")
	res, err := b.Integrations().Reconcile(ctx, "shop", declared)
	if err != nil {
		panic(err)
	}
	fmt.Println(res.Updated)
	// Output:
	// created 1, updated 0, adopted 0, removed 0, unchanged 0
	// created 0, updated 0, adopted 0, removed 0, unchanged 1
	// [shipping]
}
