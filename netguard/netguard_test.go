package netguard_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/netguard"
)

func TestCheckHost_judges_hosts_as_configurations_write_them(t *testing.T) {
	for _, tt := range []struct {
		host string
		rule string // "" when allowed
	}{
		{"127.0.0.1", "loopback"},
		{"127.8.9.10", "loopback"},
		{"::1", "loopback"},
		{"[::1]", "loopback"},
		{"::1%lo", "loopback"},
		{"::ffff:127.0.0.1", "loopback"},
		{"localhost", "loopback"},
		{"LocalHost.", "loopback"},
		{"api.localhost", "loopback"},
		{"0.0.0.0", "unspecified"},
		{"::", "unspecified"},
		{"10.0.0.1", "private"},
		{"172.16.5.4", "private"},
		{"192.168.1.1", "private"},
		{"fd00::1", "private"},
		{"64:ff9b::a00:1", "private"},
		{"169.254.169.254", "link-local"},
		{"[fe80::1%eth0]", "link-local"},
		{"100.64.0.1", "shared (CGNAT)"},
		{"224.0.0.1", "multicast"},
		{"255.255.255.255", "reserved"},
		{"192.0.2.1", ""},
		{"2001:db8::1", ""},
		{"erp.example.com", ""},
		{"localhost.example.com", ""}, // a name like any other: judged at dial time
		{"sqs.eu-west-1.amazonaws.com", ""},
	} {
		t.Run(tt.host, func(t *testing.T) {
			err := netguard.CheckHost(tt.host)
			if tt.rule == "" {
				assert.NoError(t, err)
				return
			}
			var blocked *netguard.BlockedError
			require.ErrorAs(t, err, &blocked)
			assert.ErrorIs(t, err, netguard.ErrBlocked)
			assert.Equal(t, tt.rule, blocked.Rule)
			assert.Contains(t, err.Error(), "allow_private_networks")
		})
	}
}

// The guard acts at dial time on the resolved address: a name that
// resolves to loopback is refused before any connection, and the same
// dialer reaches the listener when private networks are allowed.
func TestGuard_refuses_the_resolved_address_before_connecting(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	accepted := make(chan struct{}, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- struct{}{}
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	for _, addr := range []string{ln.Addr().String(), net.JoinHostPort("localhost", port)} {
		_, err := netguard.Guard(&net.Dialer{}, false).DialContext(ctx, "tcp", addr)
		var blocked *netguard.BlockedError
		require.ErrorAs(t, err, &blocked, addr)
		assert.Equal(t, "loopback", blocked.Rule)
		assert.True(t, blocked.Addr.IsLoopback())
	}
	select {
	case <-accepted:
		t.Fatal("a refused dial reached the listener")
	default:
	}

	c, err := netguard.Guard(&net.Dialer{}, true).DialContext(ctx, "tcp", ln.Addr().String())
	require.NoError(t, err)
	c.Close()
	<-accepted
}

func TestCheck_reports_the_bare_address(t *testing.T) {
	err := netguard.Check(netip.MustParseAddr("::ffff:10.1.2.3"))
	var blocked *netguard.BlockedError
	require.True(t, errors.As(err, &blocked))
	assert.Equal(t, netip.MustParseAddr("10.1.2.3"), blocked.Addr)
	assert.Equal(t, "sinkbus: destination 10.1.2.3 is a private address; allow_private_networks allows it"+
		" where the application allows private networks (bus.Config.AllowPrivateNetworks)", err.Error())
}
