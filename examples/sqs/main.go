// Command sqs delivers order events to an Amazon SQS queue through an
// aws_sqs integration and reads them back, as the queue's consumer would.
// By default it talks to the SQS server scripts/test-servers.sh starts;
// SINKBUS_SQS_ENDPOINT points it elsewhere.
//
//	go run ./examples/sqs
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/sinks/sqs"
)

func main() {
	endpoint := os.Getenv("SINKBUS_SQS_ENDPOINT")
	if endpoint == "" {
		endpoint = "http://127.0.0.1:9324"
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run(ctx, os.Stdout, endpoint, "sinkbus-example-orders"); err != nil {
		log.Fatal(err)
	}
}

// run creates the queue, delivers three events into it and writes what a
// consumer receives to out.
func run(ctx context.Context, out io.Writer, endpoint, queue string) error {
	client := awssqs.New(awssqs.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
	created, err := client.CreateQueue(ctx, &awssqs.CreateQueueInput{QueueName: aws.String(queue)})
	if err != nil {
		return err
	}

	b, err := bus.New(bus.Config{AllowPrivateNetworks: true}) // the test server is on loopback
	if err != nil {
		return err
	}
	defer b.Close()
	go func() { _ = b.Run(ctx) }()
	_, err = b.Integrations().Create(ctx, bus.Integration{
		ID:       "orders-to-erp",
		Observes: []string{"order.*"},
		Sink: sqs.Config{URL: *created.QueueUrl, Endpoint: endpoint, Region: "us-east-1",
			AccessKeyID: "test", SecretAccessKey: "test", AllowPrivateNetworks: true},
	})
	if err != nil {
		return err
	}
	for i, name := range []string{"order.created", "order.paid", "order.fulfilled"} {
		err := b.Publish(ctx, bus.Event{ID: fmt.Sprintf("o-1-%d", i), Name: name, Tenant: "acme",
			Payload: []byte(`{"order_id":"o-1"}`), Metadata: map[string]string{"channel": "web"}})
		if err != nil {
			return err
		}
	}

	for got := 0; got < 3; {
		msgs, err := client.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{
			QueueUrl: created.QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageAttributeNames: []string{"All"},
		})
		if err != nil {
			return err
		}
		for _, m := range msgs.Messages {
			a := m.MessageAttributes
			fmt.Fprintf(out, "received %s %s channel=%s %s\n", *a[sqs.AttrID].StringValue, *a[sqs.AttrName].StringValue,
				*a["channel"].StringValue, *m.Body)
			if _, err := client.DeleteMessage(ctx, &awssqs.DeleteMessageInput{QueueUrl: created.QueueUrl, ReceiptHandle: m.ReceiptHandle}); err != nil {
				return err
			}
			got++
		}
	}
	return nil
}
