package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
)

// -integrations declares the server's integrations in a file: the first
// start creates them, the next changes nothing, and a stop delivers what
// was published before the bus closes.
func TestServer_integrations_file_is_reconciled_at_every_start(t *testing.T) {
	var received atomic.Int64
	erp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		received.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer erp.Close()
	file := filepath.Join(t.TempDir(), "integrations.json")
	require.NoError(t, os.WriteFile(file, []byte(`[{
		"id": "erp", "integration_type": "webhook", "observes": ["order.*"],
		"configuration": {"url": "`+erp.URL+`", "allow_private_networks": true}
	}]`), 0o600))
	dir := t.TempDir()

	srv := start(t, "-data-dir", dir, "-integrations", file)
	assert.Contains(t, srv.logs.String(), `msg="integrations reconciled" file=`+file+` created=[erp]`)
	status, body := srv.call("POST", "/orders", `{"customer":"ada@example.com","items":[{"sku":"LAMP-1","quantity":1,"price":10}]}`)
	require.Equal(t, http.StatusCreated, status, body)
	var order struct{ ID string }
	require.NoError(t, json.Unmarshal([]byte(body), &order))
	status, body = srv.call("POST", "/orders/"+order.ID+"/fulfil", "")
	require.Equal(t, http.StatusOK, status, body)
	srv.stop()
	assert.Equal(t, int64(2), received.Load(), "order.created and order.fulfilled, delivered before the bus closed")

	srv = start(t, "-data-dir", dir, "-integrations", file)
	assert.Contains(t, srv.logs.String(), `created=[] updated=[] adopted=[] removed=[] unchanged=1`)
	status, body = srv.call("GET", "/api/integrations/erp", "")
	require.Equal(t, http.StatusOK, status, body)
	assert.Contains(t, body, `"owner":"examples-server"`)
	srv.stop()

	// A file the bus refuses stops the start, naming the field.
	require.NoError(t, os.WriteFile(file, []byte(`[{"id":"erp","integration_type":"webhook","configuration":{"url":"ftp://erp"}}]`), 0o600))
	cfg, err := parseFlags([]string{"-addr", "127.0.0.1:0", "-integrations", file}, io.Discard)
	require.NoError(t, err)
	err = run(context.Background(), cfg, slog.New(slog.DiscardHandler), nil)
	require.ErrorIs(t, err, bus.ErrInvalid)
	assert.Contains(t, err.Error(), "[0].configuration.url")
}

// The README's file, started as the README says, delivers to the demo
// receiver.
func TestServer_the_readme_integrations_file(t *testing.T) {
	srv := start(t, "-integrations", "integrations.json")
	assert.Contains(t, srv.logs.String(), `created=[order-feed]`)
	status, body := srv.call("GET", "/api/integrations/order-feed", "")
	require.Equal(t, http.StatusOK, status, body)
	assert.Contains(t, body, `"url":"http://127.0.0.1:8080/demo/webhook"`)
}

// A .yaml file is read as YAML, and declares what its JSON twin declares:
// reconciling one after the other changes nothing.
func TestServer_integrations_file_in_yaml(t *testing.T) {
	dir, files := t.TempDir(), t.TempDir()
	jsonFile, yamlFile := filepath.Join(files, "integrations.json"), filepath.Join(files, "integrations.yaml")
	require.NoError(t, os.WriteFile(jsonFile, []byte(`[{"id":"erp","integration_type":"webhook","observes":["order.*"],
		"configuration":{"url":"https://erp.example.com/hooks"}}]`), 0o600))
	require.NoError(t, os.WriteFile(yamlFile, []byte("- id: erp\n  integration_type: webhook\n  observes: [order.*]\n  configuration:\n    url: https://erp.example.com/hooks\n"), 0o600))

	srv := start(t, "-data-dir", dir, "-integrations", yamlFile)
	assert.Contains(t, srv.logs.String(), `created=[erp]`)
	srv.stop()
	srv = start(t, "-data-dir", dir, "-integrations", jsonFile)
	assert.Contains(t, srv.logs.String(), `created=[] updated=[] adopted=[] removed=[] unchanged=1`)
	srv.stop()
}
