package sinks_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/sinkbus/sinkbus/sinks"
)

// A sink or in-process handler says what a failure means; the delivery
// chain retries, waits or rejects accordingly.
func ExampleClassify() {
	for _, err := range []error{
		nil,
		errors.New("connection reset by peer"),
		sinks.RetryAfter(errors.New("throttled"), 2*time.Second),
		&sinks.StatusError{Destination: "https://erp.example.com", StatusCode: 429, RetryAfter: 30 * time.Second},
		&sinks.StatusError{Destination: "https://erp.example.com", StatusCode: 410},
		sinks.Permanent(errors.New("order has no customer")),
	} {
		class, after := sinks.Classify(err)
		fmt.Println(class, after)
	}
	// Output:
	// delivered 0s
	// retryable 0s
	// retryable 2s
	// retryable 30s
	// permanent 0s
	// permanent 0s
}

func ExampleMask() {
	fmt.Println(sinks.Mask("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
	fmt.Println(sinks.Mask("short"))
	// Output:
	// ****LaSw
	// ****
}
