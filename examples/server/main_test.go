package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The README's walk-through, against the real command: create a webhook
// integration from the seed's JSON, place and ship an order, read the
// integration's log, ingest a third-party event, scrape the metrics.
func TestServer_the_readme_walkthrough(t *testing.T) {
	cfg, err := parseFlags([]string{"-addr", "127.0.0.1:0", "-data-dir", "", "-ingest-token", "dev-token"}, io.Discard)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), func(addr string) { ready <- addr })
	}()
	var base string
	select {
	case addr := <-ready:
		base = "http://" + addr
	case err := <-done:
		t.Fatalf("server stopped at start: %v", err)
	}

	call := func(method, path, body string, headers ...string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		require.NoError(t, err)
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(data)
	}

	// Elastic Path's webhook example, pointed at the demo receiver.
	status, body := call("POST", "/api/integrations", `{
	  "data": {
	    "id": "shipping-notification",
	    "type": "integration",
	    "name": "Order shipping notification",
	    "description": "Send a shipping notification via email with discount code.",
	    "integration_type": "webhook",
	    "enabled": true,
	    "observes": ["order.fulfilled"],
	    "configuration": {
	      "url": "`+base+`/demo/webhook",
	      "secret_key": "SOME_SECRET_KEY",
	      "allow_private_networks": true
	    }
	  }
	}`)
	require.Equal(t, http.StatusCreated, status, body)
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

	status, body = call("GET", "/api/integrations/shipping-notification/log", "")
	require.Equal(t, http.StatusOK, status, body)
	assert.Contains(t, body, `"action":"integration_started"`)
	assert.Contains(t, body, `"action":"integration_created"`)

	seed := `{"data":{"uid":"event_uid_1","event":"be-observer.catalog_product_create","value":{"sku":"PRODUCT_SKU"}}}`
	status, _ = call("POST", "/ingest", seed)
	assert.Equal(t, http.StatusUnauthorized, status)
	status, body = call("POST", "/ingest", seed, "Authorization", "Bearer dev-token")
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

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(15 * time.Second):
		t.Fatal("the server did not stop")
	}
}

func TestServer_listens_on_loopback_by_default(t *testing.T) {
	cfg, err := parseFlags(nil, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:8080", cfg.addr)
	assert.Equal(t, "var/sinkbus", cfg.dataDir)
}
