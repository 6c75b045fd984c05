package stomp_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/stomp"
)

// A sink for an Amazon MQ broker with a standby, built in code.
func ExampleNew() {
	p, err := stomp.New(stomp.Config{
		Addresses: []string{
			"failover:(stomp+ssl://b-1234-1.mq.eu-west-1.amazonaws.com:61614,stomp+ssl://b-1234-2.mq.eu-west-1.amazonaws.com:61614)",
		},
		Destination: "/queue/orders",
		Username:    "sinkbus",
		Password:    "a-long-broker-password",
	}, sinks.Env{Concurrency: 8},
		stomp.OnConnect(func(addr string) { log.Printf("connected to %s", addr) }),
		stomp.OnDisconnect(func(addr string, err error) { log.Printf("lost %s: %v", addr, err) }),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()

	msg := message.NewMessage(watermill.NewULID(), []byte(`{"order_id":"o-1"}`))
	msg.Metadata.Set(sinks.MetaName, "order.fulfilled")
	if err := p.Publish("", msg); err != nil {
		if errors.Is(err, sinks.ErrPermanent) {
			log.Printf("the broker will never take it: %v", err)
		}
		return
	}
	// The broker confirmed the event with a receipt.
}

// Elastic Path's configuration object, decoded and shown masked.
func ExampleType() {
	c, err := stomp.Type.Decode(json.RawMessage(`{
		"addresses": ["stomp://mq.example.com"],
		"destination": "/queue/queue1",
		"username": "user1",
		"password": "mgJteE7dZgSLC2eo2vKsAUWRSnchrWzCRnoDpUSJ"
	}`))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(c.Validate())
	shown, _ := json.Marshal(c.Masked())
	fmt.Println(string(shown))
	// Output:
	// <nil>
	// {"addresses":["stomp://mq.example.com"],"destination":"/queue/queue1","username":"user1","password":"****pUSJ"}
}

func ExampleConfig_Validate() {
	err := stomp.Config{
		Addresses:      []string{"stomp://mq:61613", "http://mq:8080"},
		ReceiptTimeout: sinks.Duration(-time.Second),
	}.Validate()
	fmt.Println(err)
	// Output:
	// addresses[1]: unsupported scheme "http": use stomp://, stomp+ssl://, tcp:// or ssl://
	// destination: required
	// receipt_timeout: must not be negative
}

func ExampleParseAddresses() {
	addrs, err := stomp.ParseAddresses([]string{
		"failover:(stomp+ssl://b-1.mq.us-east-1.amazonaws.com,stomp+ssl://b-2.mq.us-east-1.amazonaws.com)",
		"localhost",
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, a := range addrs {
		fmt.Println(a, a.TLS)
	}
	// Output:
	// stomp+ssl://b-1.mq.us-east-1.amazonaws.com:61614 true
	// stomp+ssl://b-2.mq.us-east-1.amazonaws.com:61614 true
	// stomp://localhost:61613 false
}
