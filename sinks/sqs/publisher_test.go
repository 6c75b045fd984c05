package sqs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/internal/clock"
	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/sqs"
)

func TestSQSSink_standard_queue_delivers_envelopes(t *testing.T) {
	endpoint := sqsEndpoint(t)
	queue := newQueue(t, endpoint, false, nil)
	sink := newSink(t, config(queue), 4)

	sent := map[string]*message.Message{}
	for i := range 25 {
		msg := event("order.fulfilled", "acme", fmt.Sprintf(`{"order_id":"o-%d","total":%d}`, i, i*100))
		if i%5 == 0 {
			msg.Metadata.Set(sinks.MetaReplayed, "true")
		}
		msg.Metadata.Set("channel", "web")
		require.NoError(t, sink.Publish("ignored", msg))
		sent[msg.UUID] = msg
	}
	wide := event("cart.updated", "", `{"cart_id":"c-1"}`)
	for i := range 20 {
		wide.Metadata.Set(fmt.Sprintf("key_%02d", i), fmt.Sprintf("value %d <&>", i))
	}
	require.NoError(t, sink.Publish("ignored", wide))
	sent[wide.UUID] = wide

	got := readBack(t, subscriber(t, endpoint), queue, len(sent))
	for _, m := range got {
		want, ok := sent[m.UUID]
		require.True(t, ok, "unexpected message %s", m.UUID)
		delete(sent, m.UUID)
		assert.JSONEq(t, string(want.Payload), string(m.Payload))
		for k, v := range want.Metadata {
			if k == sinks.MetaAttempt {
				continue // not part of the event
			}
			assert.Equal(t, v, m.Metadata.Get(k), "metadata %s of %s", k, m.UUID)
		}
	}
	assert.Empty(t, sent, "events not read back")
}

func TestSQSSink_attributes_stay_within_ten(t *testing.T) {
	endpoint := sqsEndpoint(t)
	queue := newQueue(t, endpoint, false, nil)
	sink := newSink(t, config(queue), 1)

	few := event("order.created", "acme", `{"id":1}`)
	few.Metadata.Set("source", "pos")
	few.Metadata.Set("store", "berlin")
	wide := event("order.created", "acme", `{"id":2}`)
	wide.Metadata.Set(sinks.MetaReplayed, "true")
	for i := range 20 {
		wide.Metadata.Set(fmt.Sprintf("k%02d", i), fmt.Sprintf("v%d", i))
	}
	require.NoError(t, sink.Publish("t", few))
	require.NoError(t, sink.Publish("t", wide))

	got := drain(t, endpoint, queue)
	require.Len(t, got, 2)
	byID := map[string]types.Message{}
	for _, m := range got {
		require.LessOrEqual(t, len(m.MessageAttributes), sqs.MaxAttributes)
		byID[*m.MessageAttributes[sqs.AttrID].StringValue] = m
	}

	f := byID[few.UUID].MessageAttributes
	assert.Equal(t, "order.created", *f[sqs.AttrName].StringValue)
	assert.Equal(t, "acme", *f[sqs.AttrTenant].StringValue)
	assert.Equal(t, "pos", *f["source"].StringValue)
	assert.Equal(t, "berlin", *f["store"].StringValue)
	assert.NotContains(t, f, sqs.AttrMetadata)

	w := byID[wide.UUID]
	assert.Equal(t, "true", *w.MessageAttributes[sqs.AttrReplayed].StringValue)
	require.Contains(t, w.MessageAttributes, sqs.AttrMetadata)
	var folded map[string]string
	require.NoError(t, json.Unmarshal([]byte(*w.MessageAttributes[sqs.AttrMetadata].StringValue), &folded))
	assert.Len(t, folded, 20)
	assert.Equal(t, "v7", folded["k07"])

	var env sinks.Envelope
	require.NoError(t, json.Unmarshal([]byte(*w.Body), &env))
	assert.Equal(t, wide.UUID, env.ID)
	assert.Equal(t, "acme", env.Tenant)
	assert.Equal(t, folded, env.Metadata)
	assert.JSONEq(t, `{"id":2}`, string(env.Payload))
}

func TestSQSSink_fifo_keeps_order_per_group(t *testing.T) {
	endpoint := sqsEndpoint(t)
	queue := newQueue(t, endpoint, true, nil)
	c := config(queue)
	c.FIFOGroupKey = "payload.order.id"
	sink := newSink(t, c, 4)

	for seq := range 6 {
		for _, order := range []string{"o-1", "o-2", "o-3"} {
			msg := event("order.updated", "acme", fmt.Sprintf(`{"order":{"id":%q},"seq":%d}`, order, seq))
			require.NoError(t, sink.Publish("t", msg))
		}
	}

	got := drain(t, endpoint, queue)
	require.Len(t, got, 18)
	next := map[string]int{}
	for _, m := range got {
		var env struct {
			Payload struct {
				Order struct{ ID string }
				Seq   int
			}
		}
		require.NoError(t, json.Unmarshal([]byte(*m.Body), &env))
		order := env.Payload.Order.ID
		assert.Equal(t, order, m.Attributes["MessageGroupId"])
		assert.Equal(t, *m.MessageAttributes[sqs.AttrID].StringValue, m.Attributes["MessageDeduplicationId"])
		assert.Equal(t, next[order], env.Payload.Seq, "order of group %s", order)
		next[order] = env.Payload.Seq + 1
	}
}

func TestSQSSink_fifo_duplicate_event_is_stored_once(t *testing.T) {
	endpoint := sqsEndpoint(t)
	queue := newQueue(t, endpoint, true, nil)
	sink := newSink(t, config(queue), 4)

	msg := event("order.fulfilled", "acme", `{"id":1}`)
	require.NoError(t, sink.Publish("t", msg))
	require.NoError(t, sink.Publish("t", msg.Copy()))                         // a redelivery
	require.NoError(t, sink.Publish("t", msg.Copy(), msg.Copy(), msg.Copy())) // in one batch
	other := event("order.fulfilled", "acme", `{"id":2}`)
	require.NoError(t, sink.Publish("t", other))

	got := drain(t, endpoint, queue)
	require.Len(t, got, 2)
	assert.Equal(t, msg.UUID, *got[0].MessageAttributes[sqs.AttrID].StringValue)
	assert.Equal(t, other.UUID, *got[1].MessageAttributes[sqs.AttrID].StringValue)
}

func TestSQSSink_fifo_ids_sqs_refuses_are_hashed(t *testing.T) {
	endpoint := sqsEndpoint(t)
	queue := newQueue(t, endpoint, true, nil)
	sink := newSink(t, config(queue), 4)

	msg := event("order.created", "Müller & Söhne", `{}`)
	msg.UUID = "évènement " + strings.Repeat("x", 150)
	require.NoError(t, sink.Publish("t", msg))
	require.NoError(t, sink.Publish("t", msg.Copy()))
	plain := event("order.created", "", `{}`)
	require.NoError(t, sink.Publish("t", plain))

	got := drain(t, endpoint, queue)
	require.Len(t, got, 2)
	assert.Equal(t, msg.UUID, *got[0].MessageAttributes[sqs.AttrID].StringValue)
	assert.Regexp(t, `^[0-9a-f]{64}$`, got[0].Attributes["MessageDeduplicationId"])
	assert.Regexp(t, `^[0-9a-f]{64}$`, got[0].Attributes["MessageGroupId"])
	assert.Equal(t, sqs.DefaultGroup, got[1].Attributes["MessageGroupId"], "no tenant")
	assert.Equal(t, plain.UUID, got[1].Attributes["MessageDeduplicationId"])
}

func TestSQSSink_unknown_queue_is_permanent(t *testing.T) {
	endpoint := sqsEndpoint(t)
	queue := endpoint + "/" + account + "/sinkbus-missing-queue"
	for _, batch := range []bool{true, false} {
		t.Run(fmt.Sprintf("batch=%v", batch), func(t *testing.T) {
			c := config(queue)
			c.Batch = &batch
			sink := newSink(t, c, 8)

			errs := publishConcurrently(sink, 8, func(i int) *message.Message {
				return event("order.created", "acme", `{}`)
			})
			for _, err := range errs {
				require.Error(t, err)
				class, _ := sinks.Classify(err)
				assert.Equal(t, sinks.ClassPermanent, class, "%v", err)
				var se *sqs.Error
				require.ErrorAs(t, err, &se)
				assert.Equal(t, "AWS.SimpleQueueService.NonExistentQueue", se.Code)
				assert.Contains(t, err.Error(), "AWS.SimpleQueueService.NonExistentQueue")
				assert.Contains(t, err.Error(), "sinkbus-missing-queue")
			}
		})
	}
}

func TestSQSSink_create_queue_when_missing(t *testing.T) {
	endpoint := sqsEndpoint(t)
	raw := rawClient(t, endpoint)
	unique := strings.ReplaceAll(watermill.NewShortUUID(), "_", "-")
	for _, name := range []string{"sinkbus-created-" + unique, "sinkbus-created-" + unique + ".fifo"} {
		t.Run(name, func(t *testing.T) {
			queue := endpoint + "/" + account + "/" + name
			t.Cleanup(func() {
				_, _ = raw.DeleteQueue(context.Background(), &awssqs.DeleteQueueInput{QueueUrl: aws.String(queue)})
			})
			c := config(queue)
			c.CreateQueue = true
			sink := newSink(t, c, 4)

			errs := publishConcurrently(sink, 5, func(int) *message.Message { return event("order.created", "acme", `{}`) })
			for _, err := range errs {
				require.NoError(t, err)
			}
			assert.Len(t, drain(t, endpoint, queue), 5)
			attrs, err := raw.GetQueueAttributes(context.Background(), &awssqs.GetQueueAttributesInput{
				QueueUrl: aws.String(queue), AttributeNames: []types.QueueAttributeName{"FifoQueue"}})
			require.NoError(t, err)
			if strings.HasSuffix(name, ".fifo") {
				assert.Equal(t, "true", attrs.Attributes["FifoQueue"])
			}
		})
	}
}

func TestSQSSink_server_down_is_retryable_and_the_retry_delivers(t *testing.T) {
	endpoint := sqsEndpoint(t)
	queue := newQueue(t, endpoint, false, nil)
	server := newTCPProxy(t, endpoint)
	for _, batch := range []bool{true, false} {
		t.Run(fmt.Sprintf("batch=%v", batch), func(t *testing.T) {
			c := config(queue)
			c.Endpoint = server.URL()
			c.Batch = &batch
			sink := newSink(t, c, 4)
			before := event("order.created", "acme", `{"n":1}`)
			require.NoError(t, sink.Publish("t", before)) // a kept-alive connection, cut below

			server.Stop()
			msg := event("order.created", "acme", `{"n":2}`)
			err := sink.Publish("t", msg)
			require.Error(t, err)
			class, _ := sinks.Classify(err)
			assert.Equal(t, sinks.ClassRetryable, class, "%v", err)
			var se *sqs.Error
			require.ErrorAs(t, err, &se)
			assert.Empty(t, se.Code, "no answer, no AWS code")
			assert.Equal(t, queueName(queue), se.Queue)

			server.Start()
			require.NoError(t, sink.Publish("t", msg), "the same event, retried")

			got := drain(t, endpoint, queue)
			require.Len(t, got, 2)
			assert.Equal(t, before.UUID, *got[0].MessageAttributes[sqs.AttrID].StringValue)
			assert.Equal(t, msg.UUID, *got[1].MessageAttributes[sqs.AttrID].StringValue, "delivered once, when the server was back")
			assert.Contains(t, *got[1].Body, `"payload":{"n":2}`)
		})
	}
}

func TestSQSSink_batches_concurrent_publishes(t *testing.T) {
	endpoint := sqsEndpoint(t)
	queue := newQueue(t, endpoint, false, nil)
	proxy := newCountingProxy(t, endpoint, true)
	c := config(queue)
	c.Endpoint = proxy.URL
	sink := newSink(t, c, 50)

	// The first send is held at the proxy, so the other 49 find a send in
	// flight and must share requests.
	const n = 50
	first := event("order.created", "acme", `{"n":0}`)
	firstErr := make(chan error, 1)
	go func() { firstErr <- sink.Publish("t", first) }()
	<-proxy.held
	var mu sync.Mutex
	want := map[string]bool{first.UUID: true}
	errs := publishConcurrently(sink, n-1, func(i int) *message.Message {
		msg := event("order.created", "acme", fmt.Sprintf(`{"n":%d}`, i+1))
		mu.Lock()
		want[msg.UUID] = true
		mu.Unlock()
		return msg
	})
	for _, err := range errs {
		require.NoError(t, err)
	}
	proxy.release()
	require.NoError(t, <-firstErr)

	batches, singles := proxy.count("SendMessageBatch"), proxy.count("SendMessage")
	t.Logf("%d messages in %d SendMessageBatch and %d SendMessage requests", n, batches, singles)
	assert.Positive(t, batches)
	assert.Less(t, batches+singles, n)

	got := map[string]bool{}
	for _, m := range drain(t, endpoint, queue) {
		id := *m.MessageAttributes[sqs.AttrID].StringValue
		assert.False(t, got[id], "event %s stored twice", id)
		got[id] = true
	}
	assert.Equal(t, want, got)
}

func TestSQSSink_failed_batch_entry_fails_only_its_caller(t *testing.T) {
	endpoint := sqsEndpoint(t)
	queue := newQueue(t, endpoint, false, map[string]string{"MaximumMessageSize": "1024"})
	proxy := newCountingProxy(t, endpoint, true)
	c := config(queue)
	c.Endpoint = proxy.URL
	c.BatchWait = sinks.Duration(time.Second) // a batch goes out when full
	sink := newSink(t, c, 16)

	first := make(chan error, 1)
	go func() { first <- sink.Publish("t", event("order.created", "acme", `{}`)) }()
	<-proxy.held

	big := event("order.created", "acme", `{"note":"`+strings.Repeat("x", 1500)+`"}`)
	errs := publishConcurrently(sink, sqs.MaxBatchEntries, func(i int) *message.Message {
		if i == 3 {
			return big
		}
		return event("order.created", "acme", fmt.Sprintf(`{"n":%d}`, i))
	})
	proxy.release()
	require.NoError(t, <-first)

	assert.Equal(t, 1, proxy.count("SendMessageBatch"))
	for i, err := range errs {
		if i != 3 {
			assert.NoError(t, err, "entry %d", i)
			continue
		}
		require.Error(t, err)
		class, _ := sinks.Classify(err)
		assert.Equal(t, sinks.ClassPermanent, class)
		var se *sqs.Error
		require.ErrorAs(t, err, &se)
		assert.Equal(t, "InvalidParameterValue", se.Code)
		assert.Contains(t, err.Error(), "InvalidParameterValue")
	}
	assert.Len(t, drain(t, endpoint, queue), sqs.MaxBatchEntries) // the first and nine others
}

func TestSQSSink_retryable_batch_entry_is_resent_alone(t *testing.T) {
	endpoint := sqsEndpoint(t)
	queue := newQueue(t, endpoint, false, nil)
	proxy := newCountingProxy(t, endpoint, true)
	var failed atomic.Bool
	proxy.failEntry = func(body string) bool {
		return strings.Contains(body, "flaky") && failed.CompareAndSwap(false, true)
	}
	c := config(queue)
	c.Endpoint = proxy.URL
	c.BatchWait = sinks.Duration(time.Second) // a batch goes out when full
	sink := newSink(t, c, 16)

	first := make(chan error, 1)
	go func() { first <- sink.Publish("t", event("order.created", "acme", `{}`)) }()
	<-proxy.held
	flaky := event("order.created", "acme", `{"note":"flaky"}`)
	errs := publishConcurrently(sink, sqs.MaxBatchEntries, func(i int) *message.Message {
		if i == 4 {
			return flaky
		}
		return event("order.created", "acme", fmt.Sprintf(`{"n":%d}`, i))
	})
	proxy.release()
	require.NoError(t, <-first)

	batches := 0
	for _, r := range proxy.sent() {
		if r.Action == "SendMessageBatch" {
			batches++
			assert.Len(t, r.Events, sqs.MaxBatchEntries)
			assert.Contains(t, r.Events, flaky.UUID)
		}
	}
	require.Equal(t, 1, batches)
	for i, err := range errs {
		if i != 4 {
			assert.NoError(t, err, "entry %d", i)
			continue
		}
		require.Error(t, err)
		class, _ := sinks.Classify(err)
		assert.Equal(t, sinks.ClassRetryable, class, "%v", err)
		var se *sqs.Error
		require.ErrorAs(t, err, &se)
		assert.Equal(t, "InternalError", se.Code)
	}

	// The bus retries the one failed event, as its own Publish.
	n := len(proxy.sent())
	require.NoError(t, sink.Publish("t", flaky))
	retry := proxy.sent()[n:]
	require.Len(t, retry, 1)
	assert.Equal(t, []string{flaky.UUID}, retry[0].Events, "the retry carries only the failed entry")

	seen := map[string]int{}
	for _, m := range drain(t, endpoint, queue) {
		seen[*m.MessageAttributes[sqs.AttrID].StringValue]++
	}
	assert.Len(t, seen, 1+sqs.MaxBatchEntries)
	for id, n := range seen {
		assert.Equal(t, 1, n, "event %s stored %d times", id, n)
	}
}

func TestSQSSink_publish_of_several_names_the_messages_to_resend(t *testing.T) {
	endpoint := sqsEndpoint(t)
	queue := newQueue(t, endpoint, false, nil)
	proxy := newCountingProxy(t, endpoint, false)
	var failed atomic.Bool
	proxy.failEntry = func(body string) bool {
		return strings.Contains(body, "flaky") && failed.CompareAndSwap(false, true)
	}
	c := config(queue)
	c.Endpoint = proxy.URL
	sink := newSink(t, c, 1)

	a, flaky, b := event("a.b", "", `{"n":1}`), event("a.b", "", `{"note":"flaky"}`), event("a.b", "", `{"n":3}`)
	err := sink.Publish("t", a, flaky, b)
	var pe *sqs.PublishError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, []*message.Message{flaky}, pe.Failed)
	require.Len(t, pe.Errs, 1)
	class, _ := sinks.Classify(err)
	assert.Equal(t, sinks.ClassRetryable, class, "%v", err)
	var se *sqs.Error
	require.ErrorAs(t, err, &se)
	assert.Equal(t, "InternalError", se.Code)

	n := len(proxy.sent())
	require.NoError(t, sink.Publish("t", pe.Failed...))
	assert.Equal(t, []sendRequest{{Action: "SendMessage", Events: []string{flaky.UUID}}}, proxy.sent()[n:])
	assert.Len(t, drain(t, endpoint, queue), 3)

	one := sink.Publish("t", event("a.b", "", `"`+strings.Repeat("x", sqs.DefaultMaxMessageSize)+`"`))
	assert.NotErrorAs(t, one, &pe, "a Publish of one message fails with that message's error")
	assert.ErrorIs(t, one, sqs.ErrMessageTooLarge)
}

func TestSQSSink_fifo_publish_of_several_keeps_their_order(t *testing.T) {
	endpoint := sqsEndpoint(t)
	for _, batch := range []bool{true, false} {
		t.Run(fmt.Sprintf("batch=%v", batch), func(t *testing.T) {
			queue := newQueue(t, endpoint, true, nil)
			proxy := newCountingProxy(t, endpoint, false)
			c := config(queue)
			c.Endpoint = proxy.URL
			c.Batch = &batch
			sink := newSink(t, c, 8)

			var msgs []*message.Message
			var ids []string
			for i := range 25 {
				msgs = append(msgs, event("order.updated", "acme", fmt.Sprintf(`{"seq":%d}`, i)))
				ids = append(ids, msgs[i].UUID)
			}
			require.NoError(t, sink.Publish("t", msgs...))

			var got []string
			for _, m := range drain(t, endpoint, queue) {
				got = append(got, *m.MessageAttributes[sqs.AttrID].StringValue)
			}
			assert.Equal(t, ids, got)
			if batch {
				assert.Equal(t, 3, proxy.count("SendMessageBatch"), "10, 10 and 5, one after another")
			}
		})
	}
}

func TestSQSSink_fifo_publish_of_several_stops_at_a_failure(t *testing.T) {
	endpoint := sqsEndpoint(t)
	queue := newQueue(t, endpoint, true, nil)
	proxy := newCountingProxy(t, endpoint, false)
	proxy.failEntry = func(body string) bool { return strings.Contains(body, `"seq":3}`) }
	c := config(queue)
	c.Endpoint = proxy.URL
	sink := newSink(t, c, 8)

	var msgs []*message.Message
	for i := range 15 {
		msgs = append(msgs, event("order.updated", "acme", fmt.Sprintf(`{"seq":%d}`, i)))
	}
	err := sink.Publish("t", msgs...)
	var pe *sqs.PublishError
	require.ErrorAs(t, err, &pe)
	// The first request held 0 to 9; SQS took all but 3. 10 to 14 were not sent.
	assert.Equal(t, append([]*message.Message{msgs[3]}, msgs[10:]...), pe.Failed)
	for _, err := range pe.Errs[1:] {
		assert.ErrorIs(t, err, sqs.ErrNotSent)
		class, _ := sinks.Classify(err)
		assert.Equal(t, sinks.ClassRetryable, class)
	}
	assert.Equal(t, 1, proxy.count("SendMessageBatch"))
	assert.Zero(t, proxy.count("SendMessage"))
	assert.Len(t, drain(t, endpoint, queue), 9)
}

func TestSQSSink_batching_runs_on_the_wall_clock(t *testing.T) {
	endpoint := sqsEndpoint(t)
	queue := newQueue(t, endpoint, false, nil)
	c := config(queue)
	c.BatchWait = sinks.Duration(300 * time.Millisecond)
	// A clock that never moves: a batch waiting on it would wait until the
	// message's context ends.
	fake := clock.NewFake(time.Time{})
	sink, err := sqs.NewPublisher(c, sinks.Env{Clock: fake, Concurrency: 8})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, sink.Close()) })
	publish := func(msgs ...*message.Message) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, m := range msgs {
			m.SetContext(ctx)
		}
		return sink.Publish("t", msgs...)
	}

	// Two callers' worth of messages in one request; then one message,
	// which waits for the other caller to come back, in vain: its batch
	// goes when BatchWait is over.
	require.NoError(t, publish(event("order.created", "acme", `{"n":1}`), event("order.created", "acme", `{"n":2}`)))
	require.NoError(t, publish(event("order.created", "acme", `{"n":3}`)), "the batch wait ended on the wall clock")
	assert.Len(t, drain(t, endpoint, queue), 3)
}

func TestSQSSink_refused_batch_is_resent_entry_by_entry(t *testing.T) {
	endpoint := sqsEndpoint(t)
	queue := newQueue(t, endpoint, false, nil)
	proxy := newCountingProxy(t, endpoint, true)
	proxy.reject = func(action, body string) bool {
		// A request-level refusal of any batch, and of the poisoned message alone.
		return action == "SendMessageBatch" || strings.Contains(body, "poison")
	}
	c := config(queue)
	c.Endpoint = proxy.URL
	c.BatchWait = sinks.Duration(time.Second)
	sink := newSink(t, c, 16)

	first := make(chan error, 1)
	go func() { first <- sink.Publish("t", event("order.created", "acme", `{}`)) }()
	<-proxy.held
	errs := publishConcurrently(sink, sqs.MaxBatchEntries, func(i int) *message.Message {
		if i == 7 {
			return event("order.created", "acme", `{"note":"poison"}`)
		}
		return event("order.created", "acme", fmt.Sprintf(`{"n":%d}`, i))
	})
	proxy.release()
	require.NoError(t, <-first)

	assert.Equal(t, 1, proxy.count("SendMessageBatch"))
	assert.Equal(t, 1+sqs.MaxBatchEntries, proxy.count("SendMessage"))
	for i, err := range errs {
		if i != 7 {
			assert.NoError(t, err, "entry %d", i)
			continue
		}
		require.ErrorIs(t, err, sinks.ErrPermanent)
		assert.Contains(t, err.Error(), "InvalidParameterValue")
	}
	assert.Len(t, drain(t, endpoint, queue), sqs.MaxBatchEntries)
}

func TestSQSSink_oversize_is_permanent_before_any_request(t *testing.T) {
	endpoint := sqsEndpoint(t)
	queue := newQueue(t, endpoint, false, nil)
	proxy := newCountingProxy(t, endpoint, false)
	c := config(queue)
	c.Endpoint = proxy.URL
	sink := newSink(t, c, 4)

	err := sink.Publish("t", event("catalog.imported", "acme", `"`+strings.Repeat("x", sqs.DefaultMaxMessageSize)+`"`))
	require.ErrorIs(t, err, sqs.ErrMessageTooLarge)
	require.ErrorIs(t, err, sinks.ErrPermanent)
	assert.Contains(t, err.Error(), "262144")
	assert.Zero(t, proxy.count("SendMessage")+proxy.count("SendMessageBatch"))
}

func TestSQSSink_send_is_bound_to_message_context(t *testing.T) {
	endpoint := sqsEndpoint(t)
	queue := newQueue(t, endpoint, false, nil)
	for _, batch := range []bool{true, false} {
		t.Run(fmt.Sprintf("batch=%v", batch), func(t *testing.T) {
			proxy := newCountingProxy(t, endpoint, true) // never answers the first request
			c := config(queue)
			c.Endpoint = proxy.URL
			c.Batch = &batch
			sink := newSink(t, c, 4)

			msg := event("order.created", "acme", `{}`)
			ctx, cancel := context.WithCancel(context.Background())
			msg.SetContext(ctx)
			go func() {
				<-proxy.held
				cancel()
			}()
			err := sink.Publish("t", msg)
			require.ErrorIs(t, err, context.Canceled)
			class, _ := sinks.Classify(err)
			assert.Equal(t, sinks.ClassRetryable, class)
		})
	}
}

func TestSQSSink_without_batching_sends_one_by_one(t *testing.T) {
	endpoint := sqsEndpoint(t)
	queue := newQueue(t, endpoint, false, nil)
	proxy := newCountingProxy(t, endpoint, false)
	c := config(queue)
	c.Endpoint = proxy.URL
	off := false
	c.Batch = &off
	sink := newSink(t, c, 8)

	for _, err := range publishConcurrently(sink, 8, func(int) *message.Message { return event("a.b", "", `{}`) }) {
		require.NoError(t, err)
	}
	assert.Equal(t, 8, proxy.count("SendMessage"))
	assert.Zero(t, proxy.count("SendMessageBatch"))
	assert.Len(t, drain(t, endpoint, queue), 8)
}

func TestSQSSink_close(t *testing.T) {
	endpoint := sqsEndpoint(t)
	queue := newQueue(t, endpoint, false, nil)
	sink, err := sqs.NewPublisher(config(queue), sinks.Env{})
	require.NoError(t, err)
	require.NoError(t, sink.Publish("t", event("a.b", "", `{}`)))
	require.NoError(t, sink.Close())
	require.NoError(t, sink.Close())
	require.ErrorIs(t, sink.Publish("t", event("a.b", "", `{}`)), sinks.ErrClosed)
}

// publishConcurrently publishes n messages from n goroutines and returns
// their errors in order.
func publishConcurrently(p message.Publisher, n int, msg func(i int) *message.Message) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = p.Publish("t", msg(i))
		}()
	}
	wg.Wait()
	return errs
}
