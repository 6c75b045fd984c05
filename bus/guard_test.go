package bus_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/bustest"
	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/s3"
	"github.com/sinkbus/sinkbus/sinks/sqs"
	"github.com/sinkbus/sinkbus/sinks/stomp"
	"github.com/sinkbus/sinkbus/sinks/webhook"
)

// internalSink is a configuration of a built-in type that dials, aimed
// at an internal literal address (or localhost), and the field naming it.
type internalSink struct {
	field string
	cfg   sinks.Config
}

// internalSinks are one of each type; allow sets allow_private_networks.
func internalSinks(allow bool) []internalSink {
	return []internalSink{
		{"configuration.url", webhook.Config{URL: "http://169.254.169.254/latest/meta-data/", AllowPrivateNetworks: allow}},
		{"configuration.addresses[1]", stomp.Config{Addresses: []string{"stomp://mq.example.com", "failover:(mq.example.com:61613,10.0.0.7:61613)"},
			Destination: "/queue/q", AllowPrivateNetworks: allow}},
		{"configuration.endpoint", sqs.Config{URL: "https://sqs.eu-west-1.amazonaws.com/123456789012/orders",
			Endpoint: "http://localhost:9324", AllowPrivateNetworks: allow}},
		{"configuration.endpoint", s3.Config{Bucket: "exports", SpoolDir: "/tmp/unused", Endpoint: "http://[::1]:7070",
			AllowPrivateNetworks: allow}},
	}
}

// An integration whose literal address the network guard would refuse at
// every delivery is refused at creation, naming the field: unless the
// integration asks for private networks and the application allows them,
// both. Asking without the application's permission names
// allow_private_networks.
func TestIntegrations_literal_internal_addresses_are_refused_at_creation(t *testing.T) {
	for _, tc := range []struct {
		app, asks bool
		rule      string // "" when accepted
	}{
		{app: false, asks: false, rule: "this application does not allow private networks"},
		{app: true, asks: false, rule: "set allow_private_networks"},
		{app: false, asks: true, rule: "not allowed by this application"},
		{app: true, asks: true},
	} {
		t.Run(fmt.Sprintf("application %v, integration %v", tc.app, tc.asks), func(t *testing.T) {
			tb := bustest.New(t, func(c *bus.Config) { c.AllowPrivateNetworks = tc.app })
			for _, is := range internalSinks(tc.asks) {
				cfg := is.cfg
				_, err := tb.Integrations().Create(ctx, bus.Integration{Sink: cfg, Status: bus.Stopped, UnconfinedPaths: true})
				if tc.rule == "" {
					assert.NoError(t, err, cfg.Type())
					continue
				}
				require.ErrorIs(t, err, bus.ErrInvalid, cfg.Type())
				want := is.field
				if tc.asks {
					want = "configuration.allow_private_networks"
				}
				assert.Equal(t, []string{want}, fieldsOf(err), cfg.Type())
				assert.Contains(t, err.Error(), tc.rule, cfg.Type())
			}
		})
	}
}

// Host names other than localhost are judged when they are dialled, after
// DNS resolution: creation accepts them.
func TestIntegrations_host_names_pass_creation(t *testing.T) {
	tb := bustest.New(t, func(c *bus.Config) { c.AllowPrivateNetworks = false })
	for _, cfg := range []sinks.Config{
		webhook.Config{URL: "https://erp.example.com/hooks"},
		stomp.Config{Addresses: []string{"stomp+ssl://b-1.mq.eu-west-1.amazonaws.com:61614"}, Destination: "/queue/q"},
		sqs.Config{URL: "https://sqs.eu-west-1.amazonaws.com/123456789012/orders"},
		s3.Config{Bucket: "exports", SpoolDir: t.TempDir(), Endpoint: "https://s3.example.com"},
	} {
		_, err := tb.Integrations().Create(ctx, bus.Integration{Sink: cfg, Status: bus.Stopped, UnconfinedPaths: true})
		assert.NoError(t, err, cfg.Type())
	}
}

// An update to an internal address is refused as a creation is, and the
// integration keeps its destination.
func TestIntegrations_update_to_an_internal_address_is_refused(t *testing.T) {
	tb := bustest.New(t, func(c *bus.Config) { c.AllowPrivateNetworks = false })
	in := tb.Create(bus.Integration{ID: "erp", Sink: webhook.Config{URL: "https://erp.example.com/hooks"}, Status: bus.Stopped})
	_, err := tb.Integrations().UpdateFunc(ctx, in.ID, func(in *bus.Integration) error {
		in.Sink = webhook.Config{URL: "http://10.0.0.1/hooks"}
		return nil
	})
	require.ErrorIs(t, err, bus.ErrInvalid)
	assert.Equal(t, []string{"configuration.url"}, fieldsOf(err))
	got, err := tb.Integrations().Get(ctx, in.ID)
	require.NoError(t, err)
	assert.Equal(t, "https://erp.example.com/hooks", got.Sink.(webhook.Config).URL)
}
