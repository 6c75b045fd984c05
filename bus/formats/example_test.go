package formats_test

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/formats"
	"github.com/sinkbus/sinkbus/sinks/webhook"
)

// Integrations come from Elastic Path's and NewStore's JSON; a refused one
// names every field at fault as the body wrote it, and secrets are masked
// on every read.
func ExampleCreate() {
	b, _ := bus.New(bus.Config{})
	defer b.Close()
	ctx := context.Background()

	_, _, err := formats.Create(ctx, b.Integrations(), []byte(`{"data":{"type":"integration",
		"integration_type":"webhook",
		"configuration":{"url":"ftp://example.com"},
		"observes":["order.*",""]}}`))
	fmt.Println(err)

	in, f, err := formats.Create(ctx, b.Integrations(), []byte(`{"data":{"type":"integration",
		"name":"ERP","integration_type":"webhook",
		"configuration":{"url":"https://erp.example.com/hooks","secret_key":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
		"observes":["order.fulfilled"]}}`))
	if err != nil {
		panic(err)
	}
	fmt.Println(f, in.Name, in.Type(), in.Sink.(webhook.Config).SecretKey)
	// Output:
	// sinkbus: invalid integration: data.observes[1]: empty pattern
	// data.configuration.url: must be https or http
	// elastic_path ERP webhook ****LaSw
}

// Render shows an integration in NewStore's shape: the webhook's URL is its
// callback_url.
func ExampleRender() {
	b, _ := bus.New(bus.Config{})
	defer b.Close()
	in, err := b.Integrations().Create(context.Background(), bus.Integration{
		ID:       "erp",
		Observes: []string{"order.fulfilled"},
		Sink:     webhook.Config{URL: "https://erp.example.com/hooks"},
	})
	if err != nil {
		panic(err)
	}
	obj, _ := formats.Render(formats.NewStore, in, "")
	out, _ := json.Marshal(map[string]any{
		"integration_type": obj["integration_type"],
		"callback_url":     obj["callback_url"],
		"observes":         obj["observes"],
	})
	fmt.Println(string(out))
	// Output:
	// {"callback_url":"https://erp.example.com/hooks","integration_type":"permanent","observes":["order.fulfilled"]}
}
