// Command stomp delivers order events to a STOMP broker (RabbitMQ,
// ActiveMQ, Amazon MQ) through a stomp integration and reads them back
// from the queue, as the queue's consumer would. By default it talks to
// the RabbitMQ of scripts/test-servers.sh (guest/guest); SINKBUS_STOMP_RABBITMQ
// points it elsewhere.
//
//	go run ./examples/stomp
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	gostomp "github.com/go-stomp/stomp/v3"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/sinks/stomp"
)

func main() {
	addr := os.Getenv("SINKBUS_STOMP_RABBITMQ")
	if addr == "" {
		addr = "127.0.0.1:61613"
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run(ctx, os.Stdout, addr, "guest", "guest", "/queue/sinkbus-example.orders"); err != nil {
		log.Fatal(err)
	}
}

// run subscribes to dest, delivers three events to it and writes what the
// subscriber receives to out.
func run(ctx context.Context, out io.Writer, addr, user, pass, dest string) error {
	conn, err := gostomp.Dial("tcp", addr, gostomp.ConnOpt.Login(user, pass), gostomp.ConnOpt.Host("/"))
	if err != nil {
		return err
	}
	defer conn.Disconnect()
	sub, err := conn.Subscribe(dest, gostomp.AckAuto)
	if err != nil {
		return err
	}
	defer sub.Unsubscribe()

	b, err := bus.New(bus.Config{AllowPrivateNetworks: true}) // the test broker is on loopback
	if err != nil {
		return err
	}
	defer b.Close()
	go func() { _ = b.Run(ctx) }()
	_, err = b.Integrations().Create(ctx, bus.Integration{
		ID:       "orders-to-warehouse",
		Observes: []string{"order.*"},
		OrderKey: "payload.order_id", // the events of one order arrive in order
		Sink: stomp.Config{Addresses: []string{"stomp://" + addr}, Destination: dest,
			Username: user, Password: pass, AllowPrivateNetworks: true},
	})
	if err != nil {
		return err
	}
	for i, name := range []string{"order.created", "order.paid", "order.fulfilled"} {
		err := b.Publish(ctx, bus.Event{ID: fmt.Sprintf("o-1-%d", i), Name: name, Tenant: "acme",
			Payload: []byte(`{"order_id":"o-1"}`)})
		if err != nil {
			return err
		}
	}

	for range 3 {
		select {
		case m := <-sub.C:
			if m.Err != nil {
				return m.Err
			}
			fmt.Fprintf(out, "received %s %s %s\n", m.Header.Get(stomp.HeaderID), m.Header.Get(stomp.HeaderName), m.Body)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
