package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The README's walk-through, against the real command: create a webhook
// integration from Elastic Path's JSON, place and ship an order, read the
// integration's log, ingest a third-party event, scrape the metrics.
// started is the command running on a free loopback port.
type started struct {
	t    *testing.T
	base string
	stop func()
	logs *logBuffer // what the server logged
}

// logBuffer collects log output; safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// start runs the command with args (and a free loopback port, in memory)
// until the test ends or stop is called, which checks it stopped cleanly.
func start(t *testing.T, args ...string) *started {
	t.Helper()
	cfg, err := parseFlags(append([]string{"-addr", "127.0.0.1:0"}, args...), io.Discard)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	s := &started{t: t, logs: &logBuffer{}}
	go func() {
		done <- run(ctx, cfg, slog.New(slog.NewTextHandler(s.logs, nil)), func(addr string) { ready <- addr })
	}()
	var once sync.Once
	s.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				assert.NoError(t, err)
			case <-time.After(15 * time.Second):
				t.Error("the server did not stop")
			}
		})
	}
	select {
	case addr := <-ready:
		s.base = "http://" + addr
	case err := <-done:
		cancel()
		t.Fatalf("server stopped at start: %v", err)
	}
	t.Cleanup(s.stop)
	return s
}

// call sends one request, as JSON; headers are name, value pairs, set
// after Content-Type (which they may replace).
func (s *started) call(method, path, body string, headers ...string) (int, string) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.base+path, strings.NewReader(body))
	require.NoError(s.t, err)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(s.t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(s.t, err)
	return resp.StatusCode, string(data)
}

// readmeArgs are the README's command line.
var readmeArgs = []string{"-ingest-token", "dev-token", "-api-token", "admin-token",
	"-tenant-tokens", "acme=acme-token,globex=globex-token"}

// adminAuth is the README's Authorization header on /api.
var adminAuth = []string{"Authorization", "Bearer admin-token"}

// createShipping is the README's first request: Elastic Path's webhook
// example, pointed at the demo receiver. headers are name, value pairs.
func (s *started) createShipping(headers ...string) (int, string) {
	s.t.Helper()
	return s.call("POST", "/api/integrations", `{
	  "data": {
	    "id": "shipping-notification",
	    "type": "integration",
	    "name": "Order shipping notification",
	    "description": "Send a shipping notification via email with discount code.",
	    "integration_type": "webhook",
	    "enabled": true,
	    "observes": ["order.fulfilled"],
	    "configuration": {
	      "url": "`+s.base+`/demo/webhook",
	      "secret_key": "SOME_SECRET_KEY",
	      "allow_private_networks": true
	    }
	  }
	}`, headers...)
}

// The README's walk-through, against the real command: create a webhook
// integration from Elastic Path's JSON, place and ship an order, read the
// integration's log, ingest a third-party event, scrape the metrics, probe
// the health.
func TestServer_the_readme_walkthrough(t *testing.T) {
	srv := start(t, readmeArgs...)
	call := srv.call
	base := srv.base

	status, body := srv.createShipping(adminAuth...)
	require.Equal(t, http.StatusCreated, status, body)
	assert.Contains(t, body, `"self":"`+base+`/api/integrations/shipping-notification"`)
	assert.Contains(t, body, `"secret_key":"****_KEY"`)

	status, body = call("POST", "/orders", `{"customer":"ada@example.com","items":[{"sku":"LAMP-1","quantity":2,"price":49.5}]}`)
	require.Equal(t, http.StatusCreated, status, body)
	var ord Order
	require.NoError(t, json.Unmarshal([]byte(body), &ord))
	assert.Equal(t, 99.0, ord.Total)
	status, body = call("POST", "/orders/"+ord.ID+"/fulfil", "")
	require.Equal(t, http.StatusOK, status, body)
	status, _ = call("POST", "/orders/"+ord.ID+"/cancel", "")
	assert.Equal(t, http.StatusConflict, status, "a shipped order cannot be cancelled")

	var got struct {
		Received []received `json:"received"`
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(got.Received) == 0 {
		require.True(t, time.Now().Before(deadline), "the demo receiver got nothing")
		_, body = call("GET", "/demo/webhook", "")
		require.NoError(t, json.Unmarshal([]byte(body), &got))
		time.Sleep(5 * time.Millisecond)
	}
	require.Len(t, got.Received, 1, "order.created is not observed")
	assert.Equal(t, "order.fulfilled", got.Received[0].Event.Name)
	assert.Equal(t, "demo-shop", got.Received[0].Event.Tenant)
	assert.Contains(t, string(got.Received[0].Event.Payload), ord.ID)

	status, body = call("GET", "/api/integrations/shipping-notification/log", "", adminAuth...)
	require.Equal(t, http.StatusOK, status, body)
	assert.Contains(t, body, `"action":"integration_started"`)
	assert.Contains(t, body, `"action":"integration_created"`)

	starterKit := `{"data":{"uid":"event_uid_1","event":"be-observer.catalog_product_create","value":{"sku":"PRODUCT_SKU"}}}`
	status, _ = call("POST", "/ingest", starterKit)
	assert.Equal(t, http.StatusUnauthorized, status)
	status, body = call("POST", "/ingest", starterKit, "Authorization", "Bearer dev-token")
	assert.Equal(t, http.StatusOK, status, body)
	assert.Contains(t, body, "Event published successfully")

	// The ingested event is settled (skipped: not observed) shortly.
	deadline = time.Now().Add(10 * time.Second)
	for !strings.Contains(body, `sinkbus_lag_events{integration="shipping-notification",type="webhook"} 0`) {
		require.True(t, time.Now().Before(deadline), "still behind: %s", body)
		status, body = call("GET", "/metrics", "")
		require.Equal(t, http.StatusOK, status)
		time.Sleep(5 * time.Millisecond)
	}
	assert.Contains(t, body, `sinkbus_delivered_total{integration="shipping-notification",type="webhook"} 1`)
	assert.Contains(t, body, `sinkbus_skipped_total{integration="shipping-notification",type="webhook"} 2`)

	status, body = call("GET", "/readyz", "")
	assert.Equal(t, http.StatusOK, status, body)
	assert.Contains(t, body, `{"id":"shipping-notification","integration_type":"webhook","state":"running","circuit":"closed","lag":0}`)
	status, _ = call("GET", "/livez", "")
	assert.Equal(t, http.StatusOK, status)

	srv.stop()
}

// The defaults make the README's walk-through work, and work again: on
// loopback, in memory (each run starts afresh, as the orders do), and
// integrations may deliver to the loopback demo receiver.
func TestServer_defaults(t *testing.T) {
	cfg, err := parseFlags(nil, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:8080", cfg.addr)
	assert.Empty(t, cfg.dataDir, "in memory")
	assert.True(t, cfg.allowPrivate)

	cfg, err = parseFlags([]string{"-allow-private-networks=false", "-data-dir", "var/sinkbus"}, io.Discard)
	require.NoError(t, err)
	assert.False(t, cfg.allowPrivate)
	assert.Equal(t, "var/sinkbus", cfg.dataDir)
}

// In memory, the server says so once at start, and how to keep the events;
// with -data-dir it does not.
func TestServer_says_once_that_it_runs_in_memory(t *testing.T) {
	srv := start(t)
	srv.stop()
	logs := srv.logs.String()
	assert.Equal(t, 1, strings.Count(logs, "-data-dir"), logs)
	assert.Contains(t, logs, "msg=\"running in memory: ")
	assert.Contains(t, logs, "a restart loses every event not yet delivered")
	assert.Contains(t, logs, "64 MiB")

	srv = start(t, "-data-dir", t.TempDir())
	srv.stop()
	assert.NotContains(t, srv.logs.String(), "in memory")
}

// Without -allow-private-networks the README's integration is refused, and
// the error names the field.
func TestServer_without_allow_private_networks_refuses_the_loopback_receiver(t *testing.T) {
	srv := start(t, "-allow-private-networks=false")
	status, body := srv.createShipping()
	require.Equal(t, http.StatusBadRequest, status, body)
	assert.Contains(t, body, `"field":"data.configuration.allow_private_networks"`)
	status, _ = srv.call("GET", "/api/integrations/shipping-notification", "")
	assert.Equal(t, http.StatusNotFound, status)
}

// With -data-dir the integrations outlive the process: the walk-through's
// integration is there after a restart, and its log too.
func TestServer_data_dir_keeps_integrations_across_restarts(t *testing.T) {
	dir := t.TempDir()
	srv := start(t, "-data-dir", dir)
	status, body := srv.createShipping()
	require.Equal(t, http.StatusCreated, status, body)
	srv.stop()

	srv = start(t, "-data-dir", dir)
	status, body = srv.call("GET", "/api/integrations/shipping-notification", "")
	require.Equal(t, http.StatusOK, status, body)
	status, body = srv.createShipping()
	assert.Equal(t, http.StatusConflict, status, body)
}

// A cross-site request from a foreign page (text/plain or a form, which a
// browser sends without asking) changes nothing: the management API wants
// application/json on every request that changes something.
func TestServer_management_api_refuses_requests_a_browser_sends_cross_site(t *testing.T) {
	srv := start(t)
	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""} {
		status, body := srv.call("POST", "/api/integrations",
			`{"integration_type":"webhook","configuration":{"url":"https://attacker.example/x"}}`, "Content-Type", ct)
		assert.Equal(t, http.StatusUnsupportedMediaType, status, "%q: %s", ct, body)
	}
	status, body := srv.call("GET", "/api/integrations", "")
	require.Equal(t, http.StatusOK, status)
	assert.JSONEq(t, `{"integrations":[]}`, body)
}

// Without -api-token the command says so, loudly, wherever it listens.
func TestServer_warns_when_the_management_api_is_open(t *testing.T) {
	srv := start(t)
	srv.stop()
	assert.Contains(t, srv.logs.String(), "THE MANAGEMENT API HAS NO AUTHENTICATION")

	srv = start(t, "-api-token", "t0ken")
	srv.stop()
	assert.NotContains(t, srv.logs.String(), "NO AUTHENTICATION")
}

// A client that sends its headers and half a body does not hold the
// connection: the server cuts it at -read-timeout.
func TestServer_read_timeout_cuts_a_request_that_never_ends(t *testing.T) {
	srv := start(t, "-read-timeout", "1s")
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.base, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.Write([]byte("POST /api/integrations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" +
		"Content-Length: 100\r\n\r\n{\"integration_type\":"))
	require.NoError(t, err)
	// Far longer than the timeout: a hang, not a slow machine, fails here.
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(30*time.Second)))
	_, err = io.ReadAll(conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the server kept the half-sent request open")
	}
}

// The README's tenants walk-through: two tenants each create an erp-sync,
// each sees its own only (another tenant's answers 404, however it is
// spelt), each publishes its own events through /ingest, and each
// integration receives its tenant's event alone; the administrator sees
// both.
func TestServer_tenants_see_only_their_own(t *testing.T) {
	srv := start(t, readmeArgs...)
	call := srv.call
	as := func(token string) []string { return []string{"Authorization", "Bearer " + token} }
	erpSync := `{"id":"erp-sync","integration_type":"webhook","observes":["be-observer.*"],
	  "configuration":{"url":"` + srv.base + `/demo/webhook","secret_key":"SOME_SECRET_KEY","allow_private_networks":true}}`
	for _, tenant := range []string{"acme", "globex"} {
		status, body := call("POST", "/api/integrations", erpSync, as(tenant+"-token")...)
		require.Equal(t, http.StatusCreated, status, body)
		assert.Contains(t, body, `"tenant":"`+tenant+`"`)
	}

	ids := func(body string) []string {
		var list struct {
			Integrations []struct{ ID, Tenant string }
		}
		require.NoError(t, json.Unmarshal([]byte(body), &list), body)
		var out []string
		for _, in := range list.Integrations {
			out = append(out, in.Tenant+"/"+in.ID)
		}
		return out
	}
	status, body := call("GET", "/api/integrations", "", as("acme-token")...)
	require.Equal(t, http.StatusOK, status, body)
	assert.Equal(t, []string{"acme/erp-sync"}, ids(body))
	status, body = call("GET", "/api/integrations", "", as("admin-token")...)
	require.Equal(t, http.StatusOK, status, body)
	assert.Equal(t, []string{"acme/erp-sync", "globex/erp-sync"}, ids(body))
	status, _ = call("GET", "/api/tenants/globex/integrations/erp-sync/log", "", as("admin-token")...)
	assert.Equal(t, http.StatusOK, status)
	for _, path := range []string{"/api/tenants/globex/integrations/erp-sync", "/api/integrations/globex%2Ferp-sync",
		"/api/tenants/globex/integrations"} {
		status, body = call("GET", path, "", as("acme-token")...)
		assert.Equal(t, http.StatusNotFound, status, "%s: %s", path, body)
	}
	status, body = call("POST", "/api/integrations", `{"id":"spy","tenant":"globex","integration_type":"webhook",
	  "configuration":{"url":"https://example.com"}}`, as("acme-token")...)
	assert.Equal(t, http.StatusBadRequest, status, body)
	assert.Contains(t, body, `"field":"tenant"`)
	status, _ = call("GET", "/api/integrations", "")
	assert.Equal(t, http.StatusUnauthorized, status)

	for _, tenant := range []string{"acme", "globex"} {
		status, body = call("POST", "/ingest", `{"data":{"uid":"product-1","event":"be-observer.catalog_product_create","value":{"sku":"`+tenant+`-SKU"}}}`,
			append(as(tenant+"-token"), "X-Tenant", "globex")...)
		require.Equal(t, http.StatusOK, status, body)
	}
	var got struct {
		Received []received `json:"received"`
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(got.Received) < 2 {
		require.True(t, time.Now().Before(deadline), "the demo receiver got %d", len(got.Received))
		_, body = call("GET", "/demo/webhook", "")
		require.NoError(t, json.Unmarshal([]byte(body), &got))
		time.Sleep(5 * time.Millisecond)
	}
	tenants := map[string]string{}
	for _, r := range got.Received {
		tenants[r.Event.ID] = r.Event.Tenant
		assert.Contains(t, string(r.Event.Payload), r.Event.Tenant+"-SKU", "the header named no tenant")
	}
	assert.Equal(t, map[string]string{"acme:product-1": "acme", "globex:product-1": "globex"}, tenants)
	_, body = call("GET", "/metrics", "")
	assert.Contains(t, body, `sinkbus_delivered_total{integration="acme/erp-sync",type="webhook"} 1`)
	assert.Contains(t, body, `sinkbus_delivered_total{integration="globex/erp-sync",type="webhook"} 1`)
	srv.stop()
}

func TestServer_tenant_tokens_are_checked(t *testing.T) {
	for _, args := range [][]string{
		{"-tenant-tokens", "acme"}, {"-tenant-tokens", "a/b=t"}, {"-tenant-tokens", "acme=t,globex=t"},
		{"-tenant-tokens", "acme=t", "-api-token", "t"},
	} {
		_, err := parseFlags(args, io.Discard)
		assert.Error(t, err, "%v", args)
	}
	cfg, err := parseFlags([]string{"-tenant-tokens", "acme=a-token, globex=g-token"}, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"acme": "a-token", "globex": "g-token"}, cfg.tenantTokens)
}
