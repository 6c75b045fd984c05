package sqs_test

import (
	"context"
	"sync"
	"testing"

	wsqs "github.com/ThreeDotsLabs/watermill-aws/sqs"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"
	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/sqs"
)

// topicPublisher gives each topic its own sink, on the queue named like
// the topic (plus suffix, ".fifo" for FIFO queues): the sink itself always
// sends to its one configured queue.
type topicPublisher struct {
	t        *testing.T
	endpoint string
	suffix   string

	mu     sync.Mutex
	sinks  map[string]*sqs.Publisher
	closed bool
}

func (p *topicPublisher) Publish(topic string, msgs ...*message.Message) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return sinks.ErrClosed
	}
	sink, ok := p.sinks[topic]
	if !ok {
		c := config(p.endpoint + "/" + account + "/" + topic + p.suffix)
		c.CreateQueue = true
		var err error
		if sink, err = sqs.NewPublisher(c, sinks.Env{Concurrency: 20}); err != nil {
			p.mu.Unlock()
			return err
		}
		p.sinks[topic] = sink
		p.t.Cleanup(func() {
			_, _ = rawClient(p.t, p.endpoint).DeleteQueue(context.Background(),
				&awssqs.DeleteQueueInput{QueueUrl: aws.String(c.URL)})
		})
	}
	p.mu.Unlock()
	return sink.Publish(topic, msgs...)
}

func (p *topicPublisher) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, s := range p.sinks {
		if err := s.Close(); err != nil {
			return err
		}
	}
	return nil
}

func newPubSub(t *testing.T) (message.Publisher, message.Subscriber) {
	return newSuitePubSub(t, "")
}

// newFIFOPubSub is newPubSub on FIFO queues: topic "x" is queue "x.fifo".
func newFIFOPubSub(t *testing.T) (message.Publisher, message.Subscriber) {
	return newSuitePubSub(t, ".fifo")
}

func newSuitePubSub(t *testing.T, suffix string) (message.Publisher, message.Subscriber) {
	endpoint := sqsEndpoint(t)
	sub, err := wsqs.NewSubscriber(wsqs.SubscriberConfig{
		AWSConfig: awsConfig(t),
		OptFns:    []func(*awssqs.Options){withEndpoint(endpoint)},
		GenerateReceiveMessageInput: func(ctx context.Context, q wsqs.QueueURL) (*awssqs.ReceiveMessageInput, error) {
			in, err := wsqs.GenerateReceiveMessageInputDefault(ctx, q)
			in.MaxNumberOfMessages = 10
			in.WaitTimeSeconds = 1
			return in, err
		},
		QueueConfigAttributes: wsqs.QueueConfigAttributes{FifoQueue: wsqs.QueueConfigAttributesBool(suffix == ".fifo")},
		Unmarshaler:           sqs.Unmarshaler{},
	}, nil)
	require.NoError(t, err)
	return &topicPublisher{t: t, endpoint: endpoint, suffix: suffix, sinks: map[string]*sqs.Publisher{}},
		&closeWaitingSubscriber{Subscriber: sub, suffix: suffix}
}

// closeWaitingSubscriber makes Close return only once the subscriptions'
// channels are closed, as the suite expects: watermill-aws v1.0.1's
// Subscriber.Close returns when its receive loops have ended, but each
// closes its channel just after that.
//
// It also maps topics to queue names as topicPublisher does.
type closeWaitingSubscriber struct {
	*wsqs.Subscriber
	suffix string
	mu     sync.Mutex
	subs   []<-chan *message.Message
}

func (s *closeWaitingSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	ch, err := s.Subscriber.Subscribe(ctx, topic+s.suffix)
	if err == nil {
		s.mu.Lock()
		s.subs = append(s.subs, ch)
		s.mu.Unlock()
	}
	return ch, err
}

func (s *closeWaitingSubscriber) SubscribeInitialize(topic string) error {
	return s.Subscriber.SubscribeInitialize(topic + s.suffix)
}

func (s *closeWaitingSubscriber) Close() error {
	err := s.Subscriber.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ch := range s.subs {
		// The receive loop has returned: nothing but the close can come.
		for range ch {
		}
	}
	return err
}

func suiteContext() tests.TestContext {
	return tests.TestContext{
		TestID:   tests.NewTestID(),
		Features: tests.Features{Persistent: true, ForceShort: true},
	}
}

func TestWatermillSuite_PublishSubscribe(t *testing.T) {
	tests.TestPublishSubscribe(t, suiteContext(), newPubSub)
}

func TestWatermillSuite_PublisherClose(t *testing.T) {
	tests.TestPublisherClose(t, suiteContext(), newPubSub)
}

func TestWatermillSuite_Topic(t *testing.T) {
	tests.TestTopic(t, suiteContext(), newPubSub)
}

// On FIFO queues, grouped by tenant: the suite's messages have none, so all
// share DefaultGroup and one Publish call, which must keep their order.
func TestWatermillSuite_PublishSubscribeInOrder_fifo(t *testing.T) {
	tc := suiteContext()
	tc.Features.GuaranteedOrder = true
	tc.Features.GuaranteedOrderWithSingleSubscriber = true
	tests.TestPublishSubscribeInOrder(t, tc, newFIFOPubSub)
}

func TestWatermillSuite_PublishSubscribe_fifo(t *testing.T) {
	tests.TestPublishSubscribe(t, suiteContext(), newFIFOPubSub)
}

func TestWatermillSuite_ConcurrentSubscribe(t *testing.T) {
	tests.TestConcurrentSubscribe(t, suiteContext(), newPubSub)
}
