// Command customsink adds an integration type of its own, "console", which
// prints one line per event, and uses it from Go and from JSON. A sink type
// is a sinks.Config (validate, mask, build a Watermill publisher) and a
// decoder registered under its name; the bus gives it the whole delivery
// chain: filter, retries, circuit breaker, rejected events, log.
//
//	go run ./examples/customsink
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"os"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/formats"
	"github.com/sinkbus/sinkbus/field"
	"github.com/sinkbus/sinkbus/sinks"
)

// Console is the configuration of a "console" integration.
type Console struct {
	Prefix string `json:"prefix"`
	// MaxPayload refuses larger payloads, as a destination with a size
	// limit would. Zero means no limit.
	MaxPayload int `json:"max_payload,omitempty"`

	out io.Writer
}

func init() {
	sinks.Register(sinks.Type{Name: "console", Decode: sinks.DecodeInto[Console]})
}

func (c *Console) Type() string         { return "console" }
func (c *Console) Masked() sinks.Config { return c } // no secrets

// Validate reports every problem at once, each naming its field.
func (c *Console) Validate() error {
	var p field.Problems
	if c.Prefix == "" {
		p.Add("prefix", "required")
	}
	if c.MaxPayload < 0 {
		p.Add("max_payload", "must not be negative")
	}
	return p.Err()
}

func (c *Console) NewPublisher(sinks.Env) (message.Publisher, error) {
	out := c.out
	if out == nil {
		out = os.Stdout
	}
	return &consolePublisher{cfg: *c, out: out}, nil
}

type consolePublisher struct {
	cfg Console
	out io.Writer
}

// Publish classifies its failures once: an event too large will never
// fit (permanent: to the rejected store at once); a write error may pass
// (retryable).
func (p *consolePublisher) Publish(_ string, msgs ...*message.Message) error {
	for _, m := range msgs {
		if p.cfg.MaxPayload > 0 && len(m.Payload) > p.cfg.MaxPayload {
			return sinks.Permanent(fmt.Errorf("payload of %d bytes is over %d", len(m.Payload), p.cfg.MaxPayload))
		}
		e := bus.EventFromMessage(m)
		if _, err := fmt.Fprintf(p.out, "%s %s %s %s\n", p.cfg.Prefix, e.ID, e.Name, e.Payload); err != nil {
			return err
		}
	}
	return nil
}

func (p *consolePublisher) Close() error { return nil }

func main() {
	if err := run(os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// run creates a console integration in Go and one from JSON, publishes,
// and writes what they print, and what was rejected, to out.
func run(out io.Writer) error {
	ctx := context.Background()
	b, err := bus.New(bus.Config{})
	if err != nil {
		return err
	}
	defer b.Close()
	go func() { _ = b.Run(ctx) }()

	if _, err := b.Integrations().Create(ctx, bus.Integration{ID: "orders", Observes: []string{"order.*"},
		Concurrency: 1, // one event at a time: the lines come in order
		Sink:        &Console{Prefix: "[orders]", MaxPayload: 64, out: out}}); err != nil {
		return err
	}
	_, _, err = formats.Create(ctx, b.Integrations(), []byte(`{"integration_type":"console","configuration":{}}`))
	fmt.Fprintln(out, "refused:", err)

	err = b.Publish(ctx,
		bus.Event{ID: "o-1", Name: "order.created", Payload: json.RawMessage(`{"total":42}`)},
		bus.Event{ID: "o-2", Name: "order.created", Payload: json.RawMessage(`{"note":"` + strings.Repeat("x", 64) + `"}`)})
	if err != nil {
		return err
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		rejected, err := b.Integrations().Rejected(ctx, "orders")
		if err != nil {
			return err
		}
		if len(rejected) == 1 {
			fmt.Fprintln(out, "rejected:", rejected[0].EventID, rejected[0].Reason)
			return nil
		}
	}
	return fmt.Errorf("o-2 was not rejected in 10 s")
}
