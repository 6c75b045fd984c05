package filter_test

import (
	"encoding/json"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sinkbus/sinkbus/filter"
	"github.com/sinkbus/sinkbus/sinks"
)

func Example() {
	f, err := filter.Compile(
		[]string{"order.**", "cart.updated"},
		filter.Conditions{
			Events:  filter.Selector{Exclude: []string{"order.deleted"}},
			Payload: json.RawMessage(`{"total": {"$gte": 100}, "$or": [{"currency": "EUR"}, {"customer.vip": true}]}`),
		},
	)
	if err != nil {
		panic(err)
	}
	fmt.Println(f.Match("order.fulfilled", []byte(`{"total": 120, "currency": "EUR"}`)))
	fmt.Println(f.Match("order.fulfilled", []byte(`{"total": 120, "currency": "USD", "customer": {"vip": true}}`)))
	fmt.Println(f.Match("order.fulfilled", []byte(`{"total": 99, "currency": "EUR"}`)))
	fmt.Println(f.Match("order.deleted", []byte(`{"total": 120, "currency": "EUR"}`)))
	fmt.Println(f.Match("address.updated", []byte(`{"total": 120, "currency": "EUR"}`)))
	// Output:
	// true
	// true
	// false
	// false
	// false
}

func ExampleCompile_errors() {
	_, err := filter.Compile(
		[]string{"order.fulfilled", "order.ful*", ""},
		filter.Conditions{Payload: json.RawMessage(`{"$or": [{"total": 1}, {"total": {"$gt": true}}]}`)},
	)
	fmt.Println(err)
	// Output:
	// observes[1]: segment 2 "ful*": a wildcard must be a whole segment
	// observes[2]: empty pattern
	// filter_conditions.payload.$or[1].total: $gt needs a number or a string
}

func ExampleValidateName() {
	fmt.Println(filter.ValidateName("be-observer.catalog_product_create"))
	fmt.Println(filter.ValidateName("order..fulfilled"))
	fmt.Println(filter.ValidateName("order.ful#filled"))
	// Output:
	// <nil>
	// sinkbus: invalid event name: segment 2 is empty
	// sinkbus: invalid event name: segment 2 "ful#filled": character "#" is not allowed (use A-Z a-z 0-9 _ : -)
}

func ExampleMiddleware() {
	f, err := filter.Compile([]string{"order.*"}, filter.Conditions{
		Payload: json.RawMessage(`{"total": {"$gte": 100}}`),
	})
	if err != nil {
		panic(err)
	}
	deliver := func(msg *message.Message) ([]*message.Message, error) {
		fmt.Println("delivered", msg.UUID)
		return nil, nil
	}
	skipped := func(msg *message.Message) { fmt.Println("skipped", msg.UUID) }
	// With a router: handler.AddMiddleware(filter.Middleware(f, skipped)).
	handler := filter.Middleware(f, skipped)(deliver)

	for _, e := range []struct{ id, name, payload string }{
		{"evt-1", "order.fulfilled", `{"total": 120}`},
		{"evt-2", "order.fulfilled", `{"total": 80}`},
		{"evt-3", "cart.updated", `{"total": 120}`},
	} {
		msg := message.NewMessage(e.id, []byte(e.payload))
		msg.Metadata.Set(sinks.MetaName, e.name)
		_, _ = handler(msg)
	}
	// Output:
	// delivered evt-1
	// skipped evt-2
	// skipped evt-3
}
