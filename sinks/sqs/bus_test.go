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

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/bustest"
	"github.com/sinkbus/sinkbus/bus/formats"
	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/sqs"
)

// The tests below run aws_sqs integrations in a bus, as an application
// does, against the real SQS server: they are what "an app can add an
// aws_sqs integration and deliver" means.

// deliveries is a bus.Observer that lets a test wait for attempts and
// rejections.
type deliveries struct {
	bus.NopObserver
	mu        sync.Mutex
	attempts  []middleware.Attempt
	rejected  []middleware.RejectedEvent
	changed   chan struct{}
	delivered atomic.Int64
}

func newDeliveries() *deliveries { return &deliveries{changed: make(chan struct{})} }

func (d *deliveries) Attempted(_ string, a middleware.Attempt) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.attempts = append(d.attempts, a)
	if a.Class == sinks.ClassDelivered {
		d.delivered.Add(1)
	}
	close(d.changed)
	d.changed = make(chan struct{})
}

func (d *deliveries) Rejected(_, _ string, e middleware.RejectedEvent) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rejected = append(d.rejected, e)
	close(d.changed)
	d.changed = make(chan struct{})
}

// wait waits until done holds of the attempts and rejections so far; it
// fails the test after 30 s of real time.
func (d *deliveries) wait(t testing.TB, what string, done func(attempts []middleware.Attempt, rejected []middleware.RejectedEvent) bool) {
	t.Helper()
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for {
		d.mu.Lock()
		ok, changed := done(d.attempts, d.rejected), d.changed
		d.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("still waiting for %s after 30s", what)
		}
	}
}

func (d *deliveries) waitDelivered(t testing.TB, n int) {
	t.Helper()
	d.wait(t, fmt.Sprintf("%d deliveries", n), func([]middleware.Attempt, []middleware.RejectedEvent) bool {
		return d.delivered.Load() >= int64(n)
	})
}

// newBus is a bustest bus (a clock that moves only when told) reporting to
// the returned observer.
func newBus(t *testing.T) (*bustest.Bus, *deliveries) {
	d := newDeliveries()
	return bustest.New(t, func(c *bus.Config) { c.Observer = d }), d
}

func TestSQSIntegration_go_config_delivers_to_a_standard_queue(t *testing.T) {
	endpoint := sqsEndpoint(t)
	queue := newQueue(t, endpoint, false, nil)
	tb, d := newBus(t)
	c := config(queue)
	tb.Create(bus.Integration{ID: "orders-to-sqs", Observes: []string{"order.*"}, Sink: c})

	var events []bus.Event
	for i := range 40 {
		events = append(events, bus.Event{
			ID: fmt.Sprintf("evt-%02d", i), Name: "order.fulfilled", Tenant: []string{"acme", "globex"}[i%2],
			Payload: json.RawMessage(fmt.Sprintf(`{"order_id":"o-%d"}`, i)), Metadata: map[string]string{"channel": "web"},
		})
	}
	tb.MustPublish(events...)
	tb.MustPublish(bus.Event{Name: "cart.updated", Payload: json.RawMessage(`{}`)}) // not observed
	d.waitDelivered(t, len(events))

	d.mu.Lock()
	assert.Len(t, d.attempts, len(events), "one attempt each, none for the unobserved event")
	d.mu.Unlock()

	got := readBack(t, subscriber(t, endpoint), queue, len(events))
	byID := map[string]bus.Event{}
	for _, m := range got {
		byID[m.UUID] = bus.EventFromMessage(m)
	}
	require.Len(t, byID, len(events))
	for _, want := range events {
		e, ok := byID[want.ID]
		require.True(t, ok, "event %s not in the queue", want.ID)
		assert.Equal(t, want.Name, e.Name)
		assert.Equal(t, want.Tenant, e.Tenant)
		assert.JSONEq(t, string(want.Payload), string(e.Payload))
		assert.Equal(t, "web", e.Metadata["channel"])
	}
}

func TestSQSIntegration_elastic_path_json_with_endpoint_override(t *testing.T) {
	endpoint := sqsEndpoint(t)
	queue := newQueue(t, endpoint, false, nil)
	// Elastic Path's request example, with the queue's name and an endpoint
	// that sends its requests to the test server instead of eu-west-1.
	body := `{
		"data": {
			"type": "integration",
			"name": "Cart updated notifications",
			"description": "Send an SQS message when a cart is updated",
			"enabled": true,
			"observes": ["cart.updated"],
			"integration_type": "aws_sqs",
			"configuration": {
				"url": "https://sqs.eu-west-1.amazonaws.com/123456789/` + queueName(queue) + `",
				"aws_access_key_id": "ASIAJLVYNHUWCPKOPSYQ",
				"aws_secret_access_key": "mgJteE7dZgSLC2eo2vKsAUWRSnchrWzCRnoDpUSJ",
				"region": "eu-west-1",
				"endpoint": "` + endpoint + `",
				"allow_private_networks": true
			}
		}
	}`
	tb, d := newBus(t)
	in, _, err := formats.Create(context.Background(), tb.Integrations(), []byte(body))
	require.NoError(t, err)
	masked, ok := in.Sink.(sqs.Config)
	require.True(t, ok, "%T", in.Sink)
	assert.Equal(t, "****PSYQ", masked.AccessKeyID)
	assert.Equal(t, "****pUSJ", masked.SecretAccessKey)

	tb.MustPublish(
		bus.Event{ID: "cart-1", Name: "cart.updated", Payload: json.RawMessage(`{"cart_id":"c-1"}`)},
		bus.Event{ID: "order-1", Name: "order.created", Payload: json.RawMessage(`{}`)},
	)
	d.waitDelivered(t, 1)

	got := drain(t, endpoint, queue)
	require.Len(t, got, 1)
	var env sinks.Envelope
	require.NoError(t, json.Unmarshal([]byte(*got[0].Body), &env))
	assert.Equal(t, "cart-1", env.ID)
	assert.Equal(t, "cart.updated", env.Name)
	assert.JSONEq(t, `{"cart_id":"c-1"}`, string(env.Payload))
}

func TestSQSIntegration_fifo_keeps_publish_order_per_group_by_default(t *testing.T) {
	endpoint := sqsEndpoint(t)
	tests := []struct {
		name     string
		groupKey string
		group    func(i int) string // of the i-th event
		event    func(i int) bus.Event
	}{
		{"tenant", "", func(i int) string { return []string{"acme", "globex", "initech"}[i%3] }, func(i int) bus.Event {
			return bus.Event{Name: "order.updated", Tenant: []string{"acme", "globex", "initech"}[i%3],
				Payload: json.RawMessage(fmt.Sprintf(`{"seq":%d}`, i))}
		}},
		{"payload path", "payload.order.id", func(i int) string { return fmt.Sprintf("o-%d", i%4) }, func(i int) bus.Event {
			return bus.Event{Name: "order.updated", Tenant: "acme",
				Payload: json.RawMessage(fmt.Sprintf(`{"order":{"id":"o-%d"},"seq":%d}`, i%4, i))}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			queue := newQueue(t, endpoint, true, nil)
			tb, d := newBus(t)
			c := config(queue)
			c.FIFOGroupKey = tt.groupKey
			// No OrderKey, default concurrency: the configuration's
			// DefaultOrderKey is what keeps the order.
			in := tb.Create(bus.Integration{Observes: []string{"order.*"}, Sink: c})
			require.Empty(t, in.OrderKey)

			const n = 300
			ids := map[string][]string{} // group → event ids in publication order
			for i := 0; i < n; i += 10 {
				var batch []bus.Event
				for j := i; j < i+10; j++ {
					e := tt.event(j)
					e.ID = fmt.Sprintf("evt-%03d", j)
					ids[tt.group(j)] = append(ids[tt.group(j)], e.ID)
					batch = append(batch, e)
				}
				tb.MustPublish(batch...)
			}
			d.waitDelivered(t, n)

			got := map[string][]string{}
			for _, m := range drain(t, endpoint, queue) {
				group := m.Attributes["MessageGroupId"]
				got[group] = append(got[group], *m.MessageAttributes[sqs.AttrID].StringValue)
			}
			assert.Equal(t, ids, got)
		})
	}
}

func TestSQSIntegration_fifo_redelivered_event_is_stored_once(t *testing.T) {
	endpoint := sqsEndpoint(t)
	queue := newQueue(t, endpoint, true, nil)
	tb, d := newBus(t)
	tb.Create(bus.Integration{Sink: config(queue)})

	e := bus.Event{ID: "evt-1", Name: "order.created", Tenant: "acme", Payload: json.RawMessage(`{}`)}
	tb.MustPublish(e)
	tb.MustPublish(e) // the application published it twice: the same event id
	d.waitDelivered(t, 2)

	got := drain(t, endpoint, queue)
	require.Len(t, got, 1)
	assert.Equal(t, "evt-1", got[0].Attributes["MessageDeduplicationId"])
}

func TestSQSIntegration_unknown_queue_is_rejected_with_the_aws_code(t *testing.T) {
	endpoint := sqsEndpoint(t)
	tb, d := newBus(t)
	// One at a time: the second event is handed out once the first is
	// acknowledged, after its rejection was logged.
	in := tb.Create(bus.Integration{Sink: config(endpoint + "/" + account + "/sinkbus-no-such-queue"), Concurrency: 1})

	tb.MustPublish(
		bus.Event{ID: "evt-1", Name: "order.created", Payload: json.RawMessage(`{}`)},
		bus.Event{ID: "evt-2", Name: "order.created", Payload: json.RawMessage(`{}`)},
	)
	d.wait(t, "two rejections", func(_ []middleware.Attempt, r []middleware.RejectedEvent) bool { return len(r) == 2 })

	rejected, err := tb.Integrations().Rejected(context.Background(), in.ID)
	require.NoError(t, err)
	require.Len(t, rejected, 2)
	first, err := tb.Integrations().RejectedEvent(context.Background(), in.ID, "evt-1")
	require.NoError(t, err)
	assert.Equal(t, 1, first.Attempts, "permanent: not retried")
	assert.Contains(t, first.Reason, "AWS.SimpleQueueService.NonExistentQueue")
	assert.Contains(t, first.Reason, "sinkbus-no-such-queue")

	log, err := tb.Integrations().Log(context.Background(), in.ID)
	require.NoError(t, err)
	var reasons []string
	for _, e := range log {
		if e.Action == middleware.ActionEventRejected && e.EventID == "evt-1" {
			reasons = append(reasons, e.Reason)
		}
	}
	require.Len(t, reasons, 1)
	assert.Contains(t, reasons[0], "AWS.SimpleQueueService.NonExistentQueue")
}

func TestSQSIntegration_server_down_is_retried_then_delivered(t *testing.T) {
	endpoint := sqsEndpoint(t)
	queue := newQueue(t, endpoint, false, nil)
	server := newTCPProxy(t, endpoint)
	server.Stop()
	tb, d := newBus(t)
	c := config(queue)
	c.Endpoint = server.URL()
	in := tb.Create(bus.Integration{Sink: c, Delivery: middleware.Settings{
		Retry: middleware.RetryPolicy{InitialInterval: time.Minute, RandomizationFactor: -1},
	}})

	tb.MustPublish(bus.Event{ID: "evt-1", Name: "order.created", Payload: json.RawMessage(`{"n":1}`)})
	d.wait(t, "a failed attempt", func(a []middleware.Attempt, _ []middleware.RejectedEvent) bool { return len(a) == 1 })
	require.NoError(t, tb.Clock.BlockUntil(context.Background(), 1)) // the retry waits
	assert.Empty(t, drain(t, endpoint, queue))

	server.Start()
	tb.Clock.Advance(time.Minute)
	d.waitDelivered(t, 1)

	d.mu.Lock()
	attempts := append([]middleware.Attempt(nil), d.attempts...)
	d.mu.Unlock()
	require.Len(t, attempts, 2)
	assert.Equal(t, sinks.ClassRetryable, attempts[0].Class, "%v", attempts[0].Err)
	assert.Equal(t, sinks.ClassDelivered, attempts[1].Class)
	got := drain(t, endpoint, queue)
	require.Len(t, got, 1)
	assert.Equal(t, "evt-1", *got[0].MessageAttributes[sqs.AttrID].StringValue)

	log, err := tb.Integrations().Log(context.Background(), in.ID)
	require.NoError(t, err)
	retried := false
	for _, e := range log {
		retried = retried || e.Action == middleware.ActionRetryTriggered && e.EventID == "evt-1"
	}
	assert.True(t, retried, "the log shows the retry")
}

func TestSQSIntegration_retryable_entry_failure_resends_only_that_event(t *testing.T) {
	endpoint := sqsEndpoint(t)
	queue := newQueue(t, endpoint, false, nil)
	proxy := newCountingProxy(t, endpoint, false)
	var failed atomic.Bool
	proxy.failEntry = func(body string) bool {
		return strings.Contains(body, "flaky") && failed.CompareAndSwap(false, true)
	}
	tb, d := newBus(t)
	c := config(queue)
	c.Endpoint = proxy.URL
	tb.Create(bus.Integration{Sink: c, Delivery: middleware.Settings{
		Retry: middleware.RetryPolicy{InitialInterval: time.Minute, RandomizationFactor: -1},
	}})

	var events []bus.Event
	for i := range 20 {
		payload := fmt.Sprintf(`{"n":%d}`, i)
		if i == 7 {
			payload = `{"note":"flaky"}`
		}
		events = append(events, bus.Event{ID: fmt.Sprintf("evt-%02d", i), Name: "order.created", Payload: json.RawMessage(payload)})
	}
	tb.MustPublish(events...)
	d.waitDelivered(t, len(events)-1)
	require.NoError(t, tb.Clock.BlockUntil(context.Background(), 1)) // the flaky event's retry waits
	require.True(t, failed.Load())

	n := len(proxy.sent())
	tb.Clock.Advance(time.Minute)
	d.waitDelivered(t, len(events))
	assert.Equal(t, []sendRequest{{Action: "SendMessage", Events: []string{"evt-07"}}}, proxy.sent()[n:],
		"the retry carries only the failed event")

	seen := map[string]int{}
	for _, m := range drain(t, endpoint, queue) {
		seen[*m.MessageAttributes[sqs.AttrID].StringValue]++
	}
	assert.Len(t, seen, len(events))
	for id, n := range seen {
		assert.Equal(t, 1, n, "event %s stored %d times", id, n)
	}
}
