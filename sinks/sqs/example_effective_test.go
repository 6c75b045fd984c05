package sqs_test

import (
	"context"
	"fmt"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/sinks/sqs"
)

// An integration on a FIFO queue orders by the queue's message group
// without an order key of its own: reads show the key in force, and that it
// is a default.
func Example_effectiveOrderKey() {
	b, err := bus.New(bus.Config{})
	if err != nil {
		panic(err)
	}
	defer b.Close()
	in, err := b.Integrations().Create(context.Background(), bus.Integration{Status: bus.Stopped,
		Sink: sqs.Config{URL: "https://sqs.us-east-1.amazonaws.com/123456789012/orders.fifo"}})
	if err != nil {
		panic(err)
	}
	fmt.Printf("order_key %q, effective %q, defaults %v\n", in.OrderKey, in.Effective.OrderKey, in.Effective.Defaults)
	// Output: order_key "", effective "tenant", defaults [order_key concurrency timeout]
}
