package stomp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	gostomp "github.com/go-stomp/stomp/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/formats"
	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/stomp"
)

// Through the whole bus, against the real brokers: an integration created
// from Elastic Path's JSON, or from a stomp.Config in Go, with a first
// address that does not answer, ordered by tenant.

// runBus runs an in-memory bus on the wall clock until the test ends: the
// sink's receipt and connect timeouts and the retries run on it. opts
// adjust its configuration.
func runBus(t *testing.T, opts ...func(*bus.Config)) *bus.Bus {
	t.Helper()
	// The brokers listen on loopback.
	cfg := bus.Config{CloseTimeout: 10 * time.Second, AllowPrivateNetworks: true}
	for _, o := range opts {
		o(&cfg)
	}
	b, err := bus.New(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	select {
	case <-b.Running():
	case err := <-done:
		t.Fatalf("bus stopped at start: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, b.Close())
		<-done
	})
	return b
}

// elasticPathIntegration is Elastic Path's documented stomp example with the
// test's broker, destination and credentials, and an order key.
func elasticPathIntegration(t *testing.T, addresses []string, dest, user, pass string) []byte {
	t.Helper()
	cfg, err := json.Marshal(map[string]any{
		"addresses": addresses, "destination": dest, "username": user, "password": pass,
		"allow_private_networks": true,
	})
	require.NoError(t, err)
	return []byte(`{
		"data": {
			"type": "integration",
			"integration_type": "stomp",
			"name": "Customer address updated",
			"configuration": ` + string(cfg) + `,
			"observes": ["address.updated"],
			"order_key": "tenant"
		}
	}`)
}

func TestStompSink_through_the_bus(t *testing.T) {
	for name, get := range realBrokers(t) {
		t.Run(name, func(t *testing.T) {
			br := get(t)
			down := closedAddr(t)
			addresses := []string{fmt.Sprintf("failover:(stomp://%s,stomp://%s)", down, br.addr)}

			t.Run("from Elastic Path JSON", func(t *testing.T) {
				deliverThroughBus(t, br, down, func(b *bus.Bus, dest string) bus.Integration {
					in, _, err := formats.Create(context.Background(), b.Integrations(),
						elasticPathIntegration(t, addresses, dest, br.user, br.pass))
					require.NoError(t, err)
					return in
				})
			})
			t.Run("from stomp.Config", func(t *testing.T) {
				deliverThroughBus(t, br, down, func(b *bus.Bus, dest string) bus.Integration {
					in, err := b.Integrations().Create(context.Background(), bus.Integration{
						Name:     "Customer address updated",
						Observes: []string{"address.updated"},
						OrderKey: "tenant",
						Sink: stomp.Config{
							Addresses: addresses, Destination: dest, Username: br.user, Password: br.pass,
							AllowPrivateNetworks: true,
						},
					})
					require.NoError(t, err)
					return in
				})
			})
		})
	}
}

// deliverThroughBus publishes 200 events over 5 tenants into a bus with the
// integration create makes, and reads them back from the broker: all
// arrived, in order per tenant, with their headers; down is the first
// address, which refuses connections.
func deliverThroughBus(t *testing.T, br broker, down string, create func(*bus.Bus, string) bus.Integration) {
	const n, tenants = 200, 5
	dest := testDest()
	ch := br.subscribe(t, dest)
	b := runBus(t)
	in := create(b, dest)
	shown, err := json.Marshal(in.Sink)
	require.NoError(t, err)
	var read struct{ Password string }
	require.NoError(t, json.Unmarshal(shown, &read))
	assert.Equal(t, sinks.Mask(br.pass), read.Password, "the password is masked on read")

	events := make([]bus.Event, 0, n+1)
	want := make(map[string]bool, n)
	for i := range n {
		tenant := fmt.Sprintf("tenant-%d", i%tenants)
		e := bus.Event{
			ID: fmt.Sprintf("evt-%03d", i), Name: "address.updated", Tenant: tenant,
			Payload:  json.RawMessage(fmt.Sprintf(`{"tenant":%q,"seq":%d}`, tenant, i)),
			Metadata: map[string]string{"source": "storefront", "order id": fmt.Sprint(i)},
		}
		events = append(events, e)
		want[e.ID] = true
	}
	events = append(events, bus.Event{Name: "cart.updated", Payload: json.RawMessage(`{}`)}) // not observed
	require.NoError(t, b.Publish(context.Background(), events...))

	last := map[string]int{} // tenant → seq of its last arrival
	for _, m := range readInOrder(t, ch, want) {
		var env sinks.Envelope
		require.NoError(t, json.Unmarshal(m.Body, &env))
		var payload struct {
			Tenant string `json:"tenant"`
			Seq    int    `json:"seq"`
		}
		require.NoError(t, json.Unmarshal(env.Payload, &payload))
		require.True(t, want[env.ID], "unexpected event %s", env.ID)
		// A copy redelivered after a lost receipt comes before the next
		// event of its tenant, which waited for that receipt.
		if prev, ok := last[payload.Tenant]; ok {
			require.GreaterOrEqual(t, payload.Seq, prev, "out of order for %s", payload.Tenant)
		}
		last[payload.Tenant] = payload.Seq

		assert.Equal(t, env.ID, m.Header.Get(stomp.HeaderID))
		assert.Equal(t, "address.updated", m.Header.Get(stomp.HeaderName))
		assert.Equal(t, payload.Tenant, m.Header.Get(stomp.HeaderTenant))
		assert.Equal(t, payload.Tenant, env.Tenant)
		assert.Equal(t, "address.updated", env.Name)
		assert.Equal(t, "storefront", m.Header.Get("source"))
		assert.Equal(t, fmt.Sprint(payload.Seq), m.Header.Get("order_id"), "metadata keys cleaned into header names")
		assert.Equal(t, stomp.ContentType, m.ContentType)
		assert.Equal(t, "true", m.Header.Get("persistent"))
	}
	assert.Len(t, last, tenants)

	entries, err := b.Integrations().Log(context.Background(), in.ID)
	require.NoError(t, err)
	var reasons []string
	for _, e := range entries {
		if e.Action == stomp.ActionFailover {
			reasons = append(reasons, e.Reason)
		}
	}
	assert.Equal(t, []string{"connected to stomp://" + br.addr + " instead of stomp://" + down}, reasons,
		"the integration log says the sink went past the first address")
}

// readInOrder reads messages from ch until every id in want arrived, and
// returns them in the order of arrival, copies included.
func readInOrder(t *testing.T, ch <-chan *gostomp.Message, want map[string]bool) []*gostomp.Message {
	t.Helper()
	var got []*gostomp.Message
	seen := make(map[string]bool, len(want))
	timeout := time.After(60 * time.Second)
	for len(seen) < len(want) {
		select {
		case m, ok := <-ch:
			require.True(t, ok, "subscription closed")
			require.NoError(t, m.Err)
			got = append(got, m)
			if id := m.Header.Get(stomp.HeaderID); want[id] {
				seen[id] = true
			}
		case <-timeout:
			t.Fatalf("%d of %d events did not arrive", len(want)-len(seen), len(want))
		}
	}
	return got
}

// Through the bus, the first address dies mid-stream with receipts it kept:
// the bus's retries send those events again, through the second address,
// and nothing is rejected or lost.
func TestStompSink_through_the_bus_first_address_dies_mid_stream(t *testing.T) {
	for name, get := range realBrokers(t) {
		t.Run(name, func(t *testing.T) {
			br := get(t)
			first, second := newStompProxy(t, br.addr), newStompProxy(t, br.addr)
			dest := testDest()
			ch := br.subscribe(t, dest)
			b := runBus(t)
			in, err := b.Integrations().Create(context.Background(), bus.Integration{
				Observes: []string{"order.*"},
				Sink: stomp.Config{
					Addresses:   []string{fmt.Sprintf("failover:(stomp://%s,stomp://%s)", first.addr(), second.addr())},
					Destination: dest, Username: br.user, Password: br.pass, Connections: 4,
					AllowPrivateNetworks: true,
				},
			})
			require.NoError(t, err)

			const n = 300
			want := make(map[string]bool, n)
			events := make([]bus.Event, n)
			for i := range events {
				events[i] = bus.Event{ID: fmt.Sprintf("mid-%03d", i), Name: "order.created", Payload: json.RawMessage(`{}`)}
				want[events[i].ID] = true
			}
			require.NoError(t, b.Publish(context.Background(), events[:n/3]...))
			require.Eventually(t, func() bool { return first.sends.Load() >= n/6 }, 30*time.Second, time.Millisecond)
			first.dieAfterSwallowing(2)
			require.NoError(t, b.Publish(context.Background(), events[n/3:]...))
			select {
			case <-first.dead:
			case <-time.After(10 * time.Second):
				t.Fatal("the first address never had two receipts to keep")
			}

			readAll(t, ch, want)
			// The broker has every event; the ones whose receipts were lost
			// settle once sent again.
			require.Eventually(t, func() bool {
				lag, err := b.Integrations().Lag(context.Background(), in.ID)
				return err == nil && lag == 0
			}, 30*time.Second, 10*time.Millisecond, "every event settled")
			_, swallowed := first.snapshot()
			viaSecond, _ := second.snapshot()
			require.NotEmpty(t, swallowed)
			for id := range swallowed {
				assert.True(t, viaSecond[id], "event %s, whose receipt was lost, sent again via the second address", id)
			}
			rejected, err := b.Integrations().Rejected(context.Background(), in.ID)
			require.NoError(t, err)
			assert.Empty(t, rejected)
		})
	}
}
