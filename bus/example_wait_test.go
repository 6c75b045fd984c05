package bus_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/sinkbus/sinkbus/bus"
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
