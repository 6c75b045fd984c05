package bus_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/sinks"
)

// A command that publishes and exits waits until what it published is
// delivered before it closes the bus.
func ExampleBus_WaitDelivered() {
	b, err := bus.New(bus.Config{})
	if err != nil {
		panic(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go func() { _ = b.Run(ctx) }()
	var mailed atomic.Int64
	err = b.Handle("mailer", []string{"order.*"}, func(context.Context, bus.Event) error {
		mailed.Add(1)
		return nil
	})
	if err != nil {
		panic(err)
	}

	for i := range 3 {
		if err := b.Publish(ctx, bus.Event{Name: "order.created", Payload: []byte(fmt.Sprintf(`{"n":%d}`, i))}); err != nil {
			panic(err)
		}
	}
	if err := b.WaitDelivered(ctx); err != nil {
		panic(err)
	}
	fmt.Println(mailed.Load(), "mailed")
	// Output: 3 mailed
}

// Application code takes a bus.Publisher: a *bus.Bus, or bustest's Bus in
// its tests.
func ExamplePublisher() {
	placeOrder := func(ctx context.Context, p bus.Publisher, id string) error {
		return p.Publish(ctx, bus.Event{Name: "order.created", Payload: []byte(`{"order_id":"` + id + `"}`)})
	}
	b, err := bus.New(bus.Config{})
	if err != nil {
		panic(err)
	}
	defer b.Close()
	fmt.Println(placeOrder(context.Background(), b, "o-1"))
	// Output: <nil>
}

// A test (or a command) waits for one integration to settle what was
// published before it looks at what the integration did.
func ExampleIntegrations_WaitDelivered() {
	b, err := bus.New(bus.Config{})
	if err != nil {
		panic(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go func() { _ = b.Run(ctx) }()
	err = b.Handle("audit", nil, func(_ context.Context, e bus.Event) error {
		if e.Name == "order.refused" {
			return sinks.Permanent(errors.New("no such order"))
		}
		return nil
	})
	if err != nil {
		panic(err)
	}
	if err := b.Publish(ctx, bus.Event{Name: "order.created"}, bus.Event{Name: "order.refused"}); err != nil {
		panic(err)
	}
	if err := b.Integrations().WaitDelivered(ctx, "audit"); err != nil {
		panic(err)
	}
	rejected, _ := b.Integrations().Rejected(ctx, "audit")
	fmt.Println(len(rejected), "rejected")
	// Output: 1 rejected
}
