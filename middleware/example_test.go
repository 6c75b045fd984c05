package middleware_test

import (
	"encoding/json"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/sinks"
)

// A chain per integration wraps the handler that calls the sink. Here the
// destination refuses the event (HTTP 400): no retry, the event lands in the
// rejected store and the message is acknowledged.
func ExampleNew() {
	logStore := middleware.NewMemoryLog(0)
	rejected := middleware.NewMemoryRejected(0)
	chain, err := middleware.New(middleware.Config{
		IntegrationID: "erp-1",
		Log:           logStore,
		Rejected:      rejected,
	})
	if err != nil {
		panic(err)
	}
	deliver := chain.Middleware(func(msg *message.Message) ([]*message.Message, error) {
		// A sink's Publish would go here.
		return nil, &sinks.StatusError{Destination: "https://erp.example.com/hooks", StatusCode: 400}
	})

	msg := message.NewMessage("1a8a5052-8741-4daf-982e-e0a12990335a", []byte(`{"order_id":"42"}`))
	msg.Metadata.Set(sinks.MetaName, "order.fulfilled")
	_, err = deliver(msg)
	fmt.Println("ack:", err == nil)

	events, _ := rejected.List("erp-1")
	fmt.Println(events[0].EventID, events[0].StatusCode, events[0].Attempts)
	entries, _ := logStore.Entries("erp-1")
	fmt.Println(entries[0].Action)
	fmt.Println(chain.Breaker().State().State)
	// Output:
	// ack: true
	// 1a8a5052-8741-4daf-982e-e0a12990335a 400 1
	// event_rejected
	// closed
}

// Settings read from an integration's JSON: Commerce Layer's 3 s timeout
// and skip-while-open circuit breaker.
func ExampleSettings_UnmarshalJSON() {
	var s middleware.Settings
	err := json.Unmarshal([]byte(`{"timeout":"3s","breaker":{"skip_while_open":true}}`), &s)
	if err != nil {
		panic(err)
	}
	s.SetDefaults()
	fmt.Println(s.Validate(), s.Timeout, s.Breaker.OpenAfter, s.Breaker.WarnAfter, s.Retry.MaxAttempts)

	err = json.Unmarshal([]byte(`{"retry":{"max_attempts":0,"max_interval":"1ms"}}`), &s)
	fmt.Println(err, "|", s.Validate())
	// Output:
	// <nil> 3s 30 10 30
	// <nil> | retry.max_interval: must be at least retry.initial_interval
	// retry.max_attempts: must be >= 1
}
