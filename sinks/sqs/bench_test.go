package sqs_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/sinks/sqs"
)

// BenchmarkPublish compares the sink, fed by c concurrent Publish calls of
// one event each (as the bus calls it), with the raw SDK keeping the same c
// messages in flight in full SendMessageBatch requests (ceil(c/10)
// goroutines, c/that many entries each): the batching a perfect coalescer
// would reach. c=1 compares a lone send with a raw SendMessage. Same server,
// same messages (1 KiB payload envelopes), interleaved; figures in msgs/s.
func BenchmarkPublish(b *testing.B) {
	endpoint := sqsEndpoint(b)
	payload := fmt.Sprintf(`{"order_id":"o-1","note":%q}`, strings.Repeat("x", 1000))
	for _, c := range []int{1, 8, 16, 32} {
		b.Run(fmt.Sprintf("sink/c=%d", c), func(b *testing.B) {
			queue := newQueue(b, endpoint, false, nil)
			sink := newSink(b, config(queue), c)
			b.ReportAllocs()
			b.ResetTimer()
			parallel(b, c, func(n int) {
				msg := event("order.created", "acme", payload) // Publish only reads it
				for range n {
					if err := sink.Publish("t", msg); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
		b.Run(fmt.Sprintf("raw/c=%d", c), func(b *testing.B) {
			queue := newQueue(b, endpoint, false, nil)
			client := awssqs.NewFromConfig(awsConfig(b), withEndpoint(endpoint), func(o *awssqs.Options) {
				o.Retryer = aws.NopRetryer{}
				o.HTTPClient = awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
					t.MaxIdleConnsPerHost = c
				})
			})
			m, err := sqs.Marshaler{}.Marshal(event("order.created", "acme", payload))
			require.NoError(b, err)
			senders := (c + sqs.MaxBatchEntries - 1) / sqs.MaxBatchEntries
			size := c / senders
			b.ReportAllocs()
			b.ResetTimer()
			parallel(b, senders, func(n int) {
				ctx := context.Background()
				for n > 0 {
					k := min(size, n)
					n -= k
					var err error
					if k == 1 {
						_, err = client.SendMessage(ctx, &awssqs.SendMessageInput{QueueUrl: aws.String(queue),
							MessageBody: m.Body, MessageAttributes: m.MessageAttributes})
					} else {
						in := &awssqs.SendMessageBatchInput{QueueUrl: aws.String(queue)}
						for i := range k {
							in.Entries = append(in.Entries, types.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)),
								MessageBody: m.Body, MessageAttributes: m.MessageAttributes})
						}
						var out *awssqs.SendMessageBatchOutput
						if out, err = client.SendMessageBatch(ctx, in); err == nil && len(out.Failed) > 0 {
							err = fmt.Errorf("%d entries failed", len(out.Failed))
						}
					}
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// parallel runs b.N operations on g goroutines, run(n) doing n of them.
func parallel(b *testing.B, g int, run func(n int)) {
	var wg sync.WaitGroup
	for i := range g {
		n := b.N / g
		if i < b.N%g {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			run(n)
		}()
	}
	wg.Wait()
}
