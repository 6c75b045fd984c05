package stomp_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"
	gostomp "github.com/go-stomp/stomp/v3"

	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/stomp"
)

// Watermill's Pub/Sub scenarios that fit a publisher, with a STOMP
// subscription on RabbitMQ reading back: topic T goes to /queue/T.
func TestStompSink_watermill_scenarios(t *testing.T) {
	b := rabbitMQ(t)
	features := tests.Features{
		Persistent: true,
		GenerateTopicFunc: func(tctx tests.TestContext) string {
			return "sinkbus-test." + string(tctx.TestID)
		},
	}
	constructor := func(t *testing.T) (message.Publisher, message.Subscriber) {
		pub, err := stomp.New(b.config("/queue/sinkbus-test.unused"), sinks.Env{Concurrency: 20},
			stomp.WithDestination(func(topic string, _ *message.Message) string { return "/queue/" + topic }))
		if err != nil {
			t.Fatal(err)
		}
		return pub, &readBack{b: b, t: t, subs: map[string]*readBackSub{}}
	}
	for name, scenario := range map[string]func(*testing.T, tests.TestContext, tests.PubSubConstructor){
		"PublishSubscribe": tests.TestPublishSubscribe,
		"PublisherClose":   tests.TestPublisherClose,
		"Topic":            tests.TestTopic,
	} {
		t.Run(name, func(t *testing.T) {
			scenario(t, tests.TestContext{TestID: tests.NewTestID(), Features: features}, constructor)
		})
	}
}

// readBack is a message.Subscriber reading the sink's envelopes back from
// STOMP queues, one connection per topic, ack:auto.
type readBack struct {
	b      broker
	t      *testing.T
	mu     sync.Mutex
	subs   map[string]*readBackSub
	closed bool
}

type readBackSub struct {
	conn *gostomp.Conn
	out  chan *message.Message
	stop chan struct{}
	done chan struct{}
}

// SubscribeInitialize subscribes before the scenario publishes.
func (r *readBack) SubscribeInitialize(topic string) error {
	_, err := r.sub(topic)
	return err
}

func (r *readBack) Subscribe(_ context.Context, topic string) (<-chan *message.Message, error) {
	s, err := r.sub(topic)
	if err != nil {
		return nil, err
	}
	return s.out, nil
}

func (r *readBack) sub(topic string) (*readBackSub, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.subs[topic]; ok {
		return s, nil
	}
	conn := r.b.dial(r.t)
	ss, err := conn.Subscribe("/queue/"+topic, gostomp.AckAuto)
	if err != nil {
		return nil, err
	}
	if err := conn.Send("/topic/sinkbus-test.sync", "text/plain", nil, gostomp.SendOpt.Receipt); err != nil {
		return nil, err
	}
	s := &readBackSub{conn: conn, out: make(chan *message.Message), stop: make(chan struct{}), done: make(chan struct{})}
	r.subs[topic] = s
	go func() {
		defer close(s.done)
		for m := range ss.C { // drained to the end, so that go-stomp can close
			if m.Err != nil {
				continue
			}
			msg, err := fromEnvelope(m.Body)
			if err != nil {
				r.t.Errorf("not an envelope: %v", err)
				continue
			}
			select {
			case s.out <- msg:
			case <-s.stop:
			}
		}
	}()
	return s, nil
}

func (r *readBack) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	for _, s := range r.subs {
		close(s.stop)
		_ = s.conn.MustDisconnect()
		<-s.done
		close(s.out)
	}
	return nil
}

// fromEnvelope rebuilds the Watermill message the sink sent.
func fromEnvelope(body []byte) (*message.Message, error) {
	var env sinks.Envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, err
	}
	payload := []byte(env.Payload)
	var s string
	if json.Unmarshal(env.Payload, &s) == nil { // a non-JSON payload travels as a string
		payload = []byte(s)
	}
	msg := message.NewMessage(env.ID, payload)
	for k, v := range env.Metadata {
		msg.Metadata.Set(k, v)
	}
	return msg, nil
}
