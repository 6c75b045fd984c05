package stomp_test

import (
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/netguard"
	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/stomp"
)

// A broker on an internal address is refused by the network guard before
// any connection: Publish fails permanently, naming the guard, and the
// broker never sees a TCP connection, by address or by a name that
// resolves to loopback. With allow_private_networks the same sink connects.
func TestStompSink_network_guard_refuses_internal_brokers(t *testing.T) {
	b := newFakeBroker(t)
	_, port, err := net.SplitHostPort(b.addr())
	require.NoError(t, err)
	for _, addr := range []string{"stomp://" + b.addr(), "localhost:" + port} {
		t.Run(addr, func(t *testing.T) {
			p, err := stomp.New(stomp.Config{Addresses: []string{addr}, Destination: "/queue/q", Connections: 1}, sinks.Env{})
			require.NoError(t, err)
			defer p.Close()

			err = p.Publish("", event("order.created", "", `{}`))

			require.ErrorIs(t, err, stomp.ErrNotConnected)
			assert.ErrorIs(t, err, netguard.ErrBlocked)
			class, _ := sinks.Classify(err)
			assert.Equal(t, sinks.ClassPermanent, class, "%v", err)
			b.mu.Lock()
			assert.Empty(t, b.open, "the refused dial reached the broker")
			b.mu.Unlock()
		})
	}

	p, err := stomp.New(stomp.Config{Addresses: []string{b.addr()}, Destination: "/queue/q", Connections: 1,
		HeartBeatReceive: -1, AllowPrivateNetworks: true}, sinks.Env{})
	require.NoError(t, err)
	defer p.Close()
	require.NoError(t, p.Publish("", event("order.created", "", `{}`)))
	assert.EqualValues(t, 1, b.connects.Load())
}
