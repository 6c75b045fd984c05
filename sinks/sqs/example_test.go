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
