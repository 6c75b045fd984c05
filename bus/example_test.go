package bus_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/replay"
	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/webhook"
)

// An application publishes its domain events; a webhook integration and an
// in-process handler each receive the ones they observe.
func Example() {
	received := make(chan string, 10)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var env struct{ Name string }
		_ = json.NewDecoder(r.Body).Decode(&env)
		received <- "webhook: " + env.Name
		w.WriteHeader(http.StatusNoContent)
	}))
	defer receiver.Close()

	// In memory (set DataDir for a durable journal); the receiver is on loopback.
	b, err := bus.New(bus.Config{AllowPrivateNetworks: true})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = b.Run(ctx) }()
	defer b.Close()

	_, err = b.Integrations().Create(ctx, bus.Integration{
		ID:       "shipping",
		Observes: []string{"order.fulfilled"},
		Sink: webhook.Config{
			URL:                  receiver.URL,
			SecretKey:            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
			AllowPrivateNetworks: true, // the receiver is on loopback
		},
	})
	if err != nil {
		panic(err)
	}
	err = b.Handle("cart-mailer", []string{"cart.*"}, func(_ context.Context, e bus.Event) error {
		received <- "handler: " + e.Name
		return nil
	})
	if err != nil {
		panic(err)
	}

	err = b.Publish(ctx,
		bus.Event{Name: "order.created", Payload: json.RawMessage(`{"order_id":"o-1"}`)},
		bus.Event{Name: "order.fulfilled", Payload: json.RawMessage(`{"order_id":"o-1"}`)},
	)
	if err != nil {
		panic(err)
	}
	fmt.Println(<-received)
	if err := b.Publish(ctx, bus.Event{Name: "cart.updated"}); err != nil {
		panic(err)
	}
	fmt.Println(<-received)
	// Output:
	// webhook: order.fulfilled
	// handler: cart.updated
}

// Publish refuses invalid events as a whole, naming each problem.
func ExampleBus_Publish_invalid() {
	b, _ := bus.New(bus.Config{})
	defer b.Close()
	err := b.Publish(context.Background(),
		bus.Event{Name: "order.created", Payload: json.RawMessage(`{"total":`)},
		bus.Event{Name: ""},
	)
	fmt.Println(err)
	// Output:
	// sinkbus: invalid event: events[0].payload: not valid JSON
	// events[1].name: required
}

// A dry run counts what a replay of a date range would deliver again.
func ExampleIntegrations_Replay() {
	received := make(chan bus.Event, 10)
	b, _ := bus.New(bus.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = b.Run(ctx) }()
	defer b.Close()
	oneAtATime := func(in *bus.Integration) { in.Concurrency = 1 }
	_ = b.Handle("erp", []string{"order.*"}, func(_ context.Context, e bus.Event) error {
		received <- e
		return nil
	}, oneAtATime)

	from := time.Now()
	_ = b.Publish(ctx, bus.Event{Name: "order.created"}, bus.Event{Name: "order.fulfilled"}, bus.Event{Name: "cart.updated"})
	<-received
	<-received

	job, _ := b.Integrations().Replay(ctx, "erp", replay.Request{From: from, DryRun: true})
	fmt.Println("would replay", job.Matched)
	job, _ = b.Integrations().Replay(ctx, "erp", replay.Request{From: from})
	<-job.Done
	fmt.Println("replayed", (<-received).Name, (<-received).Name)
	// Output:
	// would replay 2
	// replayed order.created order.fulfilled
}

// Events reads the journal without changing it: what was published, and
// how far an integration has read.
func ExampleBus_Events() {
	b, _ := bus.New(bus.Config{})
	defer b.Close()
	ctx := context.Background()
	_ = b.Handle("erp", []string{"order.*"}, func(context.Context, bus.Event) error { return nil },
		func(in *bus.Integration) { in.Status = bus.Stopped })
	_ = b.Publish(ctx, bus.Event{Name: "order.created"}, bus.Event{Name: "order.fulfilled"})

	events := b.Events()
	cursor, _ := events.Cursor("erp")
	fmt.Println("head", events.Head(), "cursor", cursor, "lag", events.Lag("erp"))
	_ = events.Scan(ctx, time.Time{}, time.Time{}, func(r replay.Record) bool {
		fmt.Println(r.Offset, r.Metadata[sinks.MetaName])
		return true
	})
	// Output:
	// head 3 cursor 1 lag 2
	// 1 order.created
	// 2 order.fulfilled
}

// A receiver on loopback or a private network takes two permissions: the
// application's (bus.Config.AllowPrivateNetworks) and the integration's own
// (allow_private_networks). With either missing, a literal internal
// address is refused when the integration is created, naming the field.
func ExampleConfig_allowPrivateNetworks() {
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	defer receiver.Close()

	for _, appAllows := range []bool{false, true} {
		b, err := bus.New(bus.Config{AllowPrivateNetworks: appAllows})
		if err != nil {
			panic(err)
		}
		for _, integrationAsks := range []bool{false, true} {
			_, err := b.Integrations().Create(context.Background(), bus.Integration{
				Sink: webhook.Config{URL: receiver.URL, AllowPrivateNetworks: integrationAsks},
			})
			fmt.Printf("application %-5v integration %-5v: %v\n", appAllows, integrationAsks, err)
		}
		_ = b.Close()
	}
	// Output:
	// application false integration false: sinkbus: invalid integration: configuration.url: is a loopback address, which the network guard refuses (this application does not allow private networks: bus.Config.AllowPrivateNetworks)
	// application false integration true : sinkbus: invalid integration: configuration.allow_private_networks: not allowed by this application (bus.Config.AllowPrivateNetworks)
	// application true  integration false: sinkbus: invalid integration: configuration.url: is a loopback address, which the network guard refuses; set allow_private_networks to deliver to it
	// application true  integration true : <nil>
}

// Kubernetes probes: /livez answers while the bus runs, /readyz while it
// delivers and its journal takes appends, with each integration's state.
func ExampleBus_HealthHandler() {
	b, err := bus.New(bus.Config{})
	if err != nil {
		panic(err)
	}
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = b.Run(ctx) }()
	<-b.Running()
	err = b.Handle("mailer", []string{"order.*"}, func(context.Context, bus.Event) error { return nil })
	if err != nil {
		panic(err)
	}

	mux := http.NewServeMux()
	mux.Handle("/livez", b.HealthHandler())
	mux.Handle("/readyz", b.HealthHandler())
	for _, path := range []string{"/livez", "/readyz"} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		fmt.Print(path, " ", rec.Code, " ", rec.Body)
	}
	// Output:
	// /livez 200 {"live":true}
	// /readyz 200 {"live":true,"ready":true,"running":true,"journal":{"appendable":true},"integrations":[{"id":"mailer","integration_type":"handler","state":"running","circuit":"closed","lag":0}]}
}

// A receiver that allows two requests a second gets no more: events over
// the limit wait their turn, whether live, replayed or retried.
func ExampleRateLimit() {
	in := bus.Integration{
		ID:        "erp",
		Sink:      webhook.Config{URL: "https://erp.example.com/hooks"},
		RateLimit: bus.RateLimit{PerSecond: 2, Burst: 2},
	}
	out, _ := in.MarshalJSON()
	var shown struct {
		RateLimit json.RawMessage `json:"rate_limit"`
	}
	_ = json.Unmarshal(out, &shown)
	fmt.Println(string(shown.RateLimit))
	// Output: {"per_second":2,"burst":2}
}

// With a TracerProvider (here the OpenTelemetry SDK recording in memory),
// Publish and each delivery attempt are spans of one trace, and sinks send
// the attempt's context on (traceparent).
func ExampleConfig_tracerProvider() {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	b, err := bus.New(bus.Config{TracerProvider: tp})
	if err != nil {
		panic(err)
	}
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = b.Run(ctx) }()
	<-b.Running()
	done := make(chan struct{})
	err = b.Handle("mailer", []string{"order.*"}, func(ctx context.Context, e bus.Event) error {
		defer close(done) // ctx carries the attempt's span: the handler's own spans nest in it
		return nil
	})
	if err != nil {
		panic(err)
	}

	if err := b.Publish(ctx, bus.Event{Name: "order.created"}); err != nil {
		panic(err)
	}
	<-done
	for len(spans.Ended()) < 2 {
		time.Sleep(time.Millisecond)
	}
	ended := spans.Ended()
	names := []string{ended[0].Name(), ended[1].Name()}
	sort.Strings(names) // the attempt may end before Publish returns
	fmt.Println(names, ended[0].SpanContext().TraceID() == ended[1].SpanContext().TraceID())
	// Output: [send events send mailer] true
}

// Two tenants each have an integration erp-sync. Each receives its own
// tenant's events only, and each tenant's view of the integrations holds
// its own only; the application's view holds both, by ref.
func ExampleIntegrations_Tenant() {
	b, err := bus.New(bus.Config{})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = b.Run(ctx) }()
	defer b.Close()

	received := make(chan string, 10)
	for _, tenant := range []string{"acme", "globex"} {
		_, err := b.Integrations().Tenant(tenant).Create(ctx, bus.Integration{
			ID: "erp-sync",
			Sink: bus.HandlerFunc(func(_ context.Context, e bus.Event) error {
				received <- tenant + "'s erp-sync: " + e.ID
				return nil
			}),
		})
		if err != nil {
			panic(err)
		}
	}
	err = b.Publish(ctx,
		bus.Event{ID: "o-1", Name: "order.created", Tenant: "acme"},
		bus.Event{ID: "o-2", Name: "order.created", Tenant: "globex"},
		bus.Event{ID: "o-3", Name: "order.created", Tenant: "acme"},
	)
	if err != nil {
		panic(err)
	}
	got := []string{<-received, <-received, <-received}
	sort.Strings(got)
	for _, g := range got {
		fmt.Println(g)
	}

	acme, _ := b.Integrations().Tenant("acme").List(ctx)
	all, _ := b.Integrations().List(ctx)
	fmt.Println("acme's view:", acme[0].Ref(), "of", len(acme))
	fmt.Println("the application's view:", all[0].Ref(), all[1].Ref())
	_, err = b.Integrations().Tenant("acme").Get(ctx, "globex/erp-sync")
	fmt.Println(errors.Is(err, bus.ErrNotFound))
	// Output:
	// acme's erp-sync: o-1
	// acme's erp-sync: o-3
	// globex's erp-sync: o-2
	// acme's view: acme/erp-sync of 1
	// the application's view: acme/erp-sync globex/erp-sync
	// true
}
