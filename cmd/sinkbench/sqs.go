package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/sinkbus/sinkbus/cmd/sinkbench/internal/bench"
	"github.com/sinkbus/sinkbus/sinks/sqs"
)

func init() {
	register(benchCase{
		name: "sqs",
		about: "publish → journal → filter → chain → aws_sqs sink (batching) → local SQS server, concurrency 8, " +
			"vs raw AWS SDK SendMessageBatch requests of 8 of the same messages, one at a time (the batches the sink's 8 callers make); " +
			"one queue, deleted at the end",
		setup: setupSQS,
	})
}

func setupSQS(quick bool) (ours, raw func() float64, cleanup func(), skip string) {
	endpoint := os.Getenv("SINKBUS_SQS_ENDPOINT")
	if endpoint == "" {
		return nil, nil, nil, "SINKBUS_SQS_ENDPOINT is not set; " + serversHint
	}
	n := 30_000
	if quick {
		n = 10_000
	}
	n -= n % bench.Concurrency

	// The test servers' settings (sinks/sqs tests): any static credentials,
	// us-east-1, the endpoint overridden; no SDK retries, as in the sink.
	ctx := context.Background()
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion("us-east-1"),
		awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")))
	bench.Must(err)
	client := awssqs.NewFromConfig(awsCfg, func(o *awssqs.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.Retryer = aws.NopRetryer{}
		o.HTTPClient = awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
			t.MaxIdleConnsPerHost = bench.Concurrency
		})
	})
	name := "sinkbench-" + strings.ReplaceAll(watermill.NewShortUUID(), "_", "-")
	q, err := client.CreateQueue(ctx, &awssqs.CreateQueueInput{QueueName: aws.String(name)})
	bench.Must(err)
	queue := aws.ToString(q.QueueUrl)
	deleteQueue := func() error {
		_, err := client.DeleteQueue(ctx, &awssqs.DeleteQueueInput{QueueUrl: aws.String(queue)})
		return err
	}
	// fail ends the run without leaving the queue behind (must exits).
	fail := func(err error) {
		if err != nil {
			_ = deleteQueue()
			bench.Must(err)
		}
	}

	oursRound, stopBus := sinkBus("sqs", sqs.Config{
		URL: queue, Region: "us-east-1", AccessKeyID: "test", SecretAccessKey: "test",
		AllowPrivateNetworks: true,
	})

	// The sink's message for a bus event: envelope body and attributes.
	m, err := sqs.Marshaler{}.Marshal(bench.Message())
	fail(err)
	batch := &awssqs.SendMessageBatchInput{QueueUrl: aws.String(queue)}
	for i := range bench.Concurrency {
		batch.Entries = append(batch.Entries, types.SendMessageBatchRequestEntry{
			Id: aws.String(strconv.Itoa(i)), MessageBody: m.Body, MessageAttributes: m.MessageAttributes,
		})
	}
	rawRound := func(n int) float64 {
		start := time.Now()
		for range n / bench.Concurrency {
			out, err := client.SendMessageBatch(ctx, batch)
			fail(err)
			if len(out.Failed) > 0 {
				fail(fmt.Errorf("sqs: %d entries of a batch failed: %s", len(out.Failed), aws.ToString(out.Failed[0].Message)))
			}
		}
		return bench.PerSecond(n, time.Since(start))
	}

	// Every event must be in the queue, once, after each round. The server
	// counts a message a moment after it answered, so wait for the count.
	sent := 0
	settle := func() {
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			out, err := client.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{
				QueueUrl: aws.String(queue), AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages},
			})
			fail(err)
			got, err := strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessages)])
			fail(err)
			if got == sent {
				return
			}
			if got > sent || time.Now().After(deadline) {
				fail(fmt.Errorf("sqs: %d events sent, %d messages in the queue", sent, got))
			}
		}
	}
	checked := func(round func(int) float64, n int) float64 {
		r := round(n)
		sent += n
		settle()
		return r
	}

	// Connections open before the first timed round.
	checked(oursRound, bench.Concurrency*10)
	checked(rawRound, bench.Concurrency*10)

	ours = func() float64 { return checked(oursRound, n) }
	raw = func() float64 { return checked(rawRound, n) }
	cleanup = func() {
		stopBus()
		bench.Must(deleteQueue())
	}
	return ours, raw, cleanup, ""
}
