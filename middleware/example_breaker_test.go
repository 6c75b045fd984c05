package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/sinks"
)

// A breaker that warns after two failed attempts and opens after three.
// Hooks and log entries come in the order of the changes.
func ExampleBreaker() {
	logStore := middleware.NewMemoryLog(0)
	b, err := middleware.NewBreaker(middleware.BreakerConfig{
		IntegrationID: "erp-1",
		Policy:        middleware.BreakerPolicy{WarnAfter: 2, OpenAfter: 3},
		Log:           logStore,
		OnWarning: func(id string, failures int) {
			fmt.Println("warning:", id, failures) // keep it quick: it runs on the delivery goroutine
		},
		OnStateChange: func(id string, s middleware.BreakerState) {
			fmt.Println("state:", s.State)
		},
	})
	if err != nil {
		panic(err)
	}
	deliver := b.Middleware(func(*message.Message) ([]*message.Message, error) {
		return nil, &sinks.StatusError{Destination: "https://erp.example.com/hooks", StatusCode: 503}
	})
	for range 3 {
		_, _ = deliver(message.NewMessage("e1", nil))
	}

	st := b.State()
	fmt.Println(st.State, st.ConsecutiveFailures, st.NextProbeAt.Sub(st.OpenedAt))
	entries, _ := logStore.Entries("erp-1")
	for _, e := range entries {
		fmt.Println(e.Action)
	}
	// Output:
	// warning: erp-1 2
	// state: open
	// open 3 5s
	// circuit_opened
	// circuit_warning
}

// A manual reset closes an open circuit at once: waiting deliveries go on
// without waiting for the probe.
func ExampleBreaker_Reset() {
	logStore := middleware.NewMemoryLog(0)
	b, err := middleware.NewBreaker(middleware.BreakerConfig{
		IntegrationID: "erp-1",
		Policy:        middleware.BreakerPolicy{WarnAfter: 1, OpenAfter: 1},
		Log:           logStore,
	})
	if err != nil {
		panic(err)
	}
	_, _ = b.Middleware(func(*message.Message) ([]*message.Message, error) {
		return nil, errors.New("connection refused")
	})(message.NewMessage("e1", nil))
	fmt.Println(b.State().State)

	b.Reset()

	fmt.Println(b.State().State, b.State().ConsecutiveFailures)
	entries, _ := logStore.Entries("erp-1")
	fmt.Println(entries[0].Action)
	// Output:
	// open
	// closed 0
	// circuit_reset
}

// Retry calls the handler again after each retryable failure, and logs
// each retry with the reason. A permanent failure would stop it at once.
func ExampleRetry() {
	logStore := middleware.NewMemoryLog(0)
	calls := 0
	h := middleware.Retry{
		IntegrationID: "erp-1",
		Policy:        middleware.RetryPolicy{InitialInterval: time.Millisecond, RandomizationFactor: -1},
		Log:           logStore,
	}.Middleware(func(msg *message.Message) ([]*message.Message, error) {
		calls++
		fmt.Println("attempt", msg.Metadata.Get(sinks.MetaAttempt))
		if calls < 3 {
			return nil, &sinks.StatusError{Destination: "https://erp.example.com/hooks", StatusCode: 503}
		}
		return nil, nil
	})

	_, err := h(message.NewMessage("e1", nil))

	fmt.Println("delivered:", err == nil)
	entries, _ := logStore.Entries("erp-1")
	fmt.Println(len(entries), entries[0].Action+":", entries[0].Reason)
	// Output:
	// attempt 1
	// attempt 2
	// attempt 3
	// delivered: true
	// 2 retry_triggered: Request to URL https://erp.example.com/hooks failed. Reason: service unavailable (HTTP status code 503)
}

// Timeout bounds each attempt. An attempt that runs out of time is a
// retryable failure that says so.
func ExampleTimeout() {
	h := middleware.Timeout(10 * time.Millisecond)(func(msg *message.Message) ([]*message.Message, error) {
		<-msg.Context().Done() // a sink waiting for a slow receiver
		return nil, msg.Context().Err()
	})

	msg := message.NewMessage("e1", nil)
	_, err := h(msg)

	fmt.Println(err)
	class, _ := sinks.Classify(err)
	fmt.Println(class == sinks.ClassRetryable, sinks.IsTimeout(err))
	fmt.Println(msg.Context() == context.Background(), "(the message's own context is back)")
	// Output:
	// attempt timed out after 10ms: context deadline exceeded
	// true true
	// true (the message's own context is back)
}

// The integration log keeps the last entries of each integration, newest
// first.
func ExampleMemoryLog() {
	logStore := middleware.NewMemoryLog(2)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, action := range []string{middleware.ActionIntegrationStarted, middleware.ActionRetryTriggered, middleware.ActionEventRejected} {
		_ = logStore.Append("erp-1", middleware.LogEntry{Action: action, CreatedAt: at.Add(time.Duration(i) * time.Second)})
	}

	entries, _ := logStore.Entries("erp-1")
	for _, e := range entries {
		fmt.Println(e.CreatedAt.Format(time.TimeOnly), e.Action)
	}
	// Output:
	// 00:00:02 event_rejected
	// 00:00:01 retry_triggered
}

// The rejected store keeps the last events of each integration that could
// not be delivered; when it is full, the oldest is evicted.
func ExampleMemoryRejected() {
	store := middleware.NewMemoryRejected(2)
	for _, id := range []string{"e1", "e2", "e3"} {
		evicted, _ := store.Put("erp-1", middleware.RejectedEvent{
			EventID: id, Name: "order.fulfilled", Payload: []byte(`{"order_id":"42"}`),
			Reason: "bad request", StatusCode: 400, Attempts: 1,
		})
		for _, old := range evicted {
			fmt.Println("evicted:", old.EventID)
		}
	}

	list, _ := store.List("erp-1")
	fmt.Println("listed:", list[0].EventID, list[1].EventID)
	e, _ := store.Get("erp-1", "e2")
	fmt.Println("got:", e.EventID, e.StatusCode, string(e.Payload))
	_ = store.Delete("erp-1", "e2") // delivered by a manual retry, say
	_, err := store.Get("erp-1", "e2")
	fmt.Println(errors.Is(err, middleware.ErrNotFound))
	// Output:
	// evicted: e1
	// listed: e3 e2
	// got: e2 400 {"order_id":"42"}
	// true
}
