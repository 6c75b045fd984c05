// Command amqp makes Watermill's AMQP publisher an integration type,
// "amqp", with sinks/pubsub, and delivers order events through it to
// RabbitMQ, reading them back with Watermill's AMQP subscriber. Any other
// Watermill Pub/Sub (Kafka, NATS, Redis Streams, SQL, ...) is added the same
// way. It is a module of its own, so that sinkbus does not depend on the
// AMQP client. By default it talks to the machine's RabbitMQ
// (guest/guest); SINKBUS_AMQP_URL points it elsewhere.
//
//	(cd examples/amqp && go run .)
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/url"
	"os"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/field"
	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/pubsub"
)

// Settings are an amqp integration's configuration: {"url": ..., "exchange": ...}.
type Settings struct {
	URL string `json:"url"`
	// Exchange is the fanout exchange events go to. Empty means one per
	// event name.
	Exchange string `json:"exchange,omitempty"`
}

func (s Settings) Validate() error {
	var p field.Problems
	if u, err := url.Parse(s.URL); err != nil || (u.Scheme != "amqp" && u.Scheme != "amqps") {
		p.Add("url", "must be an amqp:// or amqps:// URL")
	}
	return p.Err()
}

// Masked hides the password of the URL.
func (s Settings) Masked() Settings {
	if u, err := url.Parse(s.URL); err == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), sinks.Mask(pw))
			s.URL = u.String()
		}
	}
	return s
}

// AMQP is the "amqp" integration type.
var AMQP = &pubsub.Type[Settings]{
	Name: "amqp",
	New: func(s Settings, env sinks.Env) (message.Publisher, error) {
		cfg := amqp.NewDurablePubSubConfig(s.URL, nil)
		cfg.Publish.ConfirmDelivery = true // delivered means the broker has it
		return amqp.NewPublisher(cfg, env.Logger)
	},
	Topic: func(s Settings, msg *message.Message) string {
		if s.Exchange != "" {
			return s.Exchange
		}
		return msg.Metadata.Get(sinks.MetaName)
	},
	Classify: classify,
}

func init() { AMQP.Register() }

// classify makes the broker's refusals of the destination or the message
// permanent: the event goes to the rejected store at once. Everything else
// (a connection lost, no confirmation) is retried.
func classify(err error) error {
	var ae *amqp091.Error
	if errors.As(err, &ae) {
		switch ae.Code {
		case amqp091.AccessRefused, amqp091.NotFound, amqp091.PreconditionFailed, amqp091.ContentTooLarge:
			return sinks.Permanent(err)
		}
	}
	return err
}

func main() {
	amqpURL := os.Getenv("SINKBUS_AMQP_URL")
	if amqpURL == "" {
		amqpURL = "amqp://guest:guest@127.0.0.1:5672/"
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run(ctx, os.Stdout, amqpURL, "sinkbus-example.orders"); err != nil {
		log.Fatal(err)
	}
}

// run subscribes to exchange, delivers two events to it through an amqp
// integration and writes what the subscriber receives to out.
func run(ctx context.Context, out io.Writer, amqpURL, exchange string) error {
	sub, err := amqp.NewSubscriber(amqp.NewDurablePubSubConfig(amqpURL, amqp.GenerateQueueNameTopicNameWithSuffix("reader")), watermill.NopLogger{})
	if err != nil {
		return err
	}
	defer sub.Close()
	msgs, err := sub.Subscribe(ctx, exchange)
	if err != nil {
		return err
	}

	b, err := bus.New(bus.Config{})
	if err != nil {
		return err
	}
	defer b.Close()
	go func() { _ = b.Run(ctx) }()
	_, err = b.Integrations().Create(ctx, bus.Integration{
		ID: "orders-to-rabbitmq", Observes: []string{"order.*"},
		OrderKey: "payload.order_id", // one order's events arrive in the order published
		Sink:     AMQP.Config(Settings{URL: amqpURL, Exchange: exchange}),
	})
	if err != nil {
		return err
	}
	for _, id := range []string{"o-1", "o-2"} {
		if err := b.Publish(ctx, bus.Event{ID: id, Name: "order.created", Payload: []byte(`{"order_id":"7","total":42}`)}); err != nil {
			return err
		}
	}

	for range 2 {
		select {
		case m := <-msgs:
			m.Ack()
			var env sinks.Envelope
			if err := json.Unmarshal(m.Payload, &env); err != nil {
				return err
			}
			fmt.Fprintf(out, "received %s %s %s\n", m.UUID, env.Name, env.Payload)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
