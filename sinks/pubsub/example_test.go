package pubsub_test

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/pubsub"
)

// Settings of an integration publishing to a topic of a Watermill Pub/Sub.
type Settings struct {
	Topic string `json:"topic"`
}

// Any Watermill publisher becomes an integration type: here an in-process
// GoChannel, in an application AMQP, Kafka, NATS or Redis Streams (see
// examples/amqp).
func Example() {
	channel := gochannel.NewGoChannel(gochannel.Config{Persistent: true}, watermill.NopLogger{})
	defer channel.Close()
	typ := &pubsub.Type[Settings]{
		Name: "channel",
		New: func(Settings, sinks.Env) (message.Publisher, error) {
			return nopClose{channel}, nil
		},
		Topic: func(s Settings, _ *message.Message) string { return s.Topic },
	}
	reg := sinks.DefaultRegistry().Clone()
	if err := reg.Register(typ.SinkType()); err != nil { // or typ.Register() from init
		panic(err)
	}

	ctx := context.Background()
	b, err := bus.New(bus.Config{Sinks: reg})
	if err != nil {
		panic(err)
	}
	defer b.Close()
	go func() { _ = b.Run(ctx) }()
	<-b.Running()
	_, err = b.Integrations().Create(ctx, bus.Integration{
		ID: "orders-out", Observes: []string{"order.*"}, Sink: typ.Config(Settings{Topic: "orders"}),
	})
	if err != nil {
		panic(err)
	}

	msgs, err := channel.Subscribe(ctx, "orders")
	if err != nil {
		panic(err)
	}
	if err := b.Publish(ctx, bus.Event{ID: "o-1", Name: "order.fulfilled", Payload: []byte(`{"total":42}`)}); err != nil {
		panic(err)
	}
	msg := <-msgs
	msg.Ack()
	var env sinks.Envelope
	if err := json.Unmarshal(msg.Payload, &env); err != nil {
		panic(err)
	}
	fmt.Println(msg.UUID, env.Name, string(env.Payload))
	// Output: o-1 order.fulfilled {"total":42}
}

// nopClose leaves the channel open when the integration closes its sink.
type nopClose struct{ message.Publisher }

func (nopClose) Close() error { return nil }
