package webhook_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/netguard"
	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/webhook"
)

func TestWebhookSink_refuses_internal_addresses(t *testing.T) {
	tests := []struct {
		url  string
		rule string
	}{
		{"http://127.0.0.1/hook", "loopback"},
		{"http://127.8.9.10:8080/hook", "loopback"},
		{"http://[::1]:9/hook", "loopback"},
		{"http://[::ffff:127.0.0.1]/hook", "loopback"},
		{"http://[::ffff:7f00:1]:9/hook", "loopback"},
		{"http://[::1%25lo]:9/hook", "loopback"},
		{"http://localhost:9/hook", "loopback"},
		{"http://0.0.0.0/hook", "unspecified"},
		{"http://0.0.0.0:9/hook", "unspecified"},
		{"http://[::]:9/hook", "unspecified"},
		{"http://[::ffff:0.0.0.0]:9/hook", "unspecified"},
		{"http://[::ffff:10.0.0.1]/hook", "private"},
		{"http://[fe80::1%25eth0]/hook", "link-local"},
		{"http://[fe80::1%25lo]:9/hook", "link-local"},
		{"http://[::ffff:169.254.169.254]/latest/meta-data/", "link-local"},
		{"http://10.0.0.1/hook", "private"},
		{"http://172.16.5.4/hook", "private"},
		{"https://192.168.1.1/hook", "private"},
		{"http://[fd00::1]/hook", "private"},
		{"http://169.254.169.254/latest/meta-data/", "link-local"},
		{"http://100.64.0.1/hook", "shared (CGNAT)"},
		{"http://[64:ff9b::a00:1]/hook", "private"},
		{"http://224.0.0.1/hook", "multicast"},
	}
	env, _ := testEnv()
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			// A long timeout: a dial that got through to 10.0.0.1 would hang
			// and end as a retryable timeout, not as a permanent refusal.
			p, err := webhook.New(webhook.Config{URL: tt.url, Timeout: sinks.Duration(time.Minute)}, env)
			require.NoError(t, err)
			defer p.Close()

			err = p.Publish("t", event("e-1", "a.b", `{}`))

			assert.Equal(t, sinks.ClassPermanent, class(err), "%v", err)
			assert.ErrorIs(t, err, netguard.ErrBlocked)
			var blocked *netguard.BlockedError
			require.ErrorAs(t, err, &blocked)
			assert.Equal(t, tt.rule, blocked.Rule)
			assert.Contains(t, err.Error(), "allow_private_networks")
			assert.False(t, sinks.IsTimeout(err))
			assert.True(t, blocked.Addr.IsValid())
			assert.Empty(t, blocked.Addr.Zone(), "the refused address is reported bare")
		})
	}
}

func TestWebhookSink_guard_checks_the_resolved_address(t *testing.T) {
	rc := newReceiver(t, http.StatusNoContent)
	u, err := url.Parse(rc.URL)
	require.NoError(t, err)
	byName := "http://localhost:" + u.Port() + "/hook"
	env, _ := testEnv()

	p, err := webhook.New(webhook.Config{URL: byName}, env)
	require.NoError(t, err)
	defer p.Close()
	err = p.Publish("t", event("e-1", "a.b", `{}`))
	assert.ErrorIs(t, err, netguard.ErrBlocked)
	assert.Zero(t, rc.hits.Load(), "the refused request reached the receiver")

	for _, target := range []string{byName, rc.URL} {
		allowed, err := webhook.New(webhook.Config{URL: target, AllowPrivateNetworks: true}, env)
		require.NoError(t, err)
		assert.NoError(t, allowed.Publish("t", event("e-1", "a.b", `{}`)), target)
		require.NoError(t, allowed.Close())
	}
	assert.EqualValues(t, 2, rc.hits.Load())
}

func TestWebhookSink_public_addresses_pass_the_guard(t *testing.T) {
	// 192.0.2.1 (TEST-NET-1) is public as far as the guard is concerned, and
	// unreachable: the dial gets past the guard and times out.
	env, _ := testEnv()
	p, err := webhook.New(webhook.Config{URL: "http://192.0.2.1/hook", Timeout: sinks.Duration(50 * time.Millisecond)}, env)
	require.NoError(t, err)
	defer p.Close()

	err = p.Publish("t", event("e-1", "a.b", `{}`))

	require.Error(t, err)
	assert.NotErrorIs(t, err, netguard.ErrBlocked)
	assert.Equal(t, sinks.ClassRetryable, class(err))
	assert.False(t, strings.Contains(err.Error(), "allow_private_networks"))
}

// listenIPv6Loopback serves 204 on [::1], counting requests, or skips when
// the machine has no IPv6 loopback.
func listenIPv6Loopback(t *testing.T) (port string, hits *atomic.Int32) {
	t.Helper()
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	hits = new(atomic.Int32)
	srv := &httptest.Server{Listener: l, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusNoContent)
	})}}
	srv.Start()
	t.Cleanup(srv.Close)
	_, port, err = net.SplitHostPort(l.Addr().String())
	require.NoError(t, err)
	return port, hits
}

// The addresses the guard once let through (a zone hides an address from
// netip.Prefix.Contains) reach a live receiver when allowed, so their
// refusal above is the guard's and not a failed dial.
func TestWebhookSink_guard_ipv6_loopback_with_and_without_zone(t *testing.T) {
	port, hits := listenIPv6Loopback(t)
	env, _ := testEnv()
	for _, target := range []string{
		"http://[::1]:" + port + "/hook",
		"http://[::1%25lo]:" + port + "/hook",
		"http://[::ffff:127.0.0.1]:" + port + "/hook", // refused, whatever listens
	} {
		t.Run(target, func(t *testing.T) {
			before := hits.Load()
			guarded, err := webhook.New(webhook.Config{URL: target}, env)
			require.NoError(t, err)
			defer guarded.Close()

			err = guarded.Publish("t", event("e-1", "a.b", `{}`))

			assert.ErrorIs(t, err, netguard.ErrBlocked)
			assert.Equal(t, before, hits.Load(), "the refused request reached the receiver")
		})
	}
	for _, target := range []string{"http://[::1]:" + port + "/hook", "http://[::1%25lo]:" + port + "/hook"} {
		t.Run("allowed "+target, func(t *testing.T) {
			before := hits.Load()
			allowed, err := webhook.New(webhook.Config{URL: target, AllowPrivateNetworks: true}, env)
			require.NoError(t, err)
			defer allowed.Close()

			require.NoError(t, allowed.Publish("t", event("e-1", "a.b", `{}`)))

			assert.Equal(t, before+1, hits.Load())
		})
	}
}

// With allow_private_networks every private range gets past the guard: the
// dial is made (and, for these unroutable addresses here, times out).
func TestWebhookSink_private_ranges_pass_with_the_option(t *testing.T) {
	env, _ := testEnv()
	for _, u := range []string{"http://10.255.255.1/hook", "http://169.254.169.254/latest/meta-data", "http://192.168.255.254/hook"} {
		refused, err := webhook.New(webhook.Config{URL: u, Timeout: sinks.Duration(50 * time.Millisecond)}, env)
		require.NoError(t, err)
		assert.ErrorIs(t, refused.Publish("t", event("e-1", "a.b", `{}`)), netguard.ErrBlocked, u)
		require.NoError(t, refused.Close())

		allowed, err := webhook.New(webhook.Config{URL: u, Timeout: sinks.Duration(50 * time.Millisecond), AllowPrivateNetworks: true}, env)
		require.NoError(t, err)
		err = allowed.Publish("t", event("e-1", "a.b", `{}`))
		assert.NotErrorIs(t, err, netguard.ErrBlocked, u)
		require.NoError(t, allowed.Close())
	}
}
