package sqs_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/sqs"
)

// An aws_sqs configuration as Elastic Path's API takes it, shown back with
// its credentials masked.
func ExampleConfig_Masked() {
	registry := sinks.NewRegistry(sqs.Type)
	c, err := registry.Decode("aws_sqs", json.RawMessage(`{
		"url": "https://sqs.eu-west-1.amazonaws.com/123456789/epcc-external-queue",
		"aws_access_key_id": "ASIAJLVYNHUWCPKOPSYQ",
		"aws_secret_access_key": "mgJteE7dZgSLC2eo2vKsAUWRSnchrWzCRnoDpUSJ",
		"region": "eu-west-1"
	}`))
	if err != nil {
		panic(err)
	}
	fmt.Println(c.Validate())
	out, _ := json.MarshalIndent(c.Masked(), "", "  ")
	fmt.Println(string(out))

	bad := sqs.Config{URL: "http://127.0.0.1:9324/000000000000/orders", AccessKeyID: "AKIA"}
	fmt.Println(bad.Validate())
	// Output:
	// <nil>
	// {
	//   "url": "https://sqs.eu-west-1.amazonaws.com/123456789/epcc-external-queue",
	//   "aws_access_key_id": "****PSYQ",
	//   "aws_secret_access_key": "****pUSJ",
	//   "region": "eu-west-1"
	// }
	// region: required when the URL does not name one
	// aws_secret_access_key: required with aws_access_key_id
}

// Sending an event to a FIFO queue, grouped by order so that each order's
// events stay in sequence.
func ExampleNewPublisher() {
	sink, err := sqs.NewPublisher(sqs.Config{
		URL:          "https://sqs.eu-west-1.amazonaws.com/123456789012/orders.fifo",
		FIFOGroupKey: "payload.order_id",
		// No keys: the default AWS credential chain (environment, role).
	}, sinks.Env{Logger: watermill.NewSlogLogger(nil), Concurrency: 16})
	if err != nil {
		panic(err)
	}
	defer sink.Close()

	msg := message.NewMessage(watermill.NewULID(), []byte(`{"order_id":"o-1001","total":4200}`))
	msg.Metadata.Set(sinks.MetaName, "order.fulfilled")
	msg.Metadata.Set(sinks.MetaTenant, "acme")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msg.SetContext(ctx)

	switch err := sink.Publish("orders", msg); {
	case err == nil:
	case errors.Is(err, sinks.ErrPermanent):
		fmt.Fprintln(os.Stderr, "rejected:", err) // e.g. QueueDoesNotExist, AccessDenied
	default:
		fmt.Fprintln(os.Stderr, "will retry:", err) // throttling, 5XX, network
	}
}

// What a send to a queue that does not exist comes to: a permanent failure
// (no retry, straight to the rejected store) that keeps SQS's error code.
func ExampleClassify() {
	// The SDK's error for SQS's answer.
	missing := &smithy.GenericAPIError{
		Code:    "QueueDoesNotExist",
		Message: "The specified queue does not exist.",
		Fault:   smithy.FaultClient,
	}
	err := sqs.Classify(missing)
	class, _ := sinks.Classify(err)
	fmt.Println(class, errors.Is(err, sinks.ErrPermanent))
	var se *sqs.Error
	if errors.As(err, &se) {
		fmt.Println(se.Code)
	}

	throttled := sqs.Classify(&smithy.GenericAPIError{Code: "ThrottlingException", Fault: smithy.FaultClient})
	class, _ = sinks.Classify(throttled)
	fmt.Println(class)
	// Output:
	// permanent true
	// QueueDoesNotExist
	// retryable
}

// Reading back a message the sink sent, as a consumer of the queue (or a
// watermill-aws Subscriber given this Unmarshaler) does.
func ExampleUnmarshaler() {
	received := &types.Message{
		MessageId: aws.String("5fea7756-0ea4-451a-a703-a558b933e274"),
		Body: aws.String(`{"id":"01JDQ5B0P3V8Y7M2K6H4C9X1ZT","name":"order.fulfilled","tenant":"acme",` +
			`"published_at":"2026-11-22T10:00:00.123Z","payload":{"order_id":"o-1001"},"metadata":{"channel":"web"}}`),
	}
	msg, err := sqs.Unmarshaler{}.Unmarshal(received)
	if err != nil {
		panic(err)
	}
	fmt.Println(msg.UUID)
	fmt.Println(string(msg.Payload))
	fmt.Println(msg.Metadata.Get(sinks.MetaName), msg.Metadata.Get(sinks.MetaTenant), msg.Metadata.Get("channel"))
	// Output:
	// 01JDQ5B0P3V8Y7M2K6H4C9X1ZT
	// {"order_id":"o-1001"}
	// order.fulfilled acme web
}

// The order key a bus uses for an aws_sqs integration that sets none: the
// FIFO group key, so that each group's events reach the queue in the order
// they were published; none for a standard queue.
func ExampleConfig_DefaultOrderKey() {
	fifo := sqs.Config{URL: "https://sqs.eu-west-1.amazonaws.com/123456789012/orders.fifo"}
	fmt.Printf("%q\n", fifo.DefaultOrderKey())
	fifo.FIFOGroupKey = "payload.order_id"
	fmt.Printf("%q\n", fifo.DefaultOrderKey())
	standard := sqs.Config{URL: "https://sqs.eu-west-1.amazonaws.com/123456789012/orders"}
	fmt.Printf("%q\n", standard.DefaultOrderKey())
	// Output:
	// "tenant"
	// "payload.order_id"
	// ""
}
