package access_test

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/access"
	"github.com/sinkbus/sinkbus/bus/api"
	"github.com/sinkbus/sinkbus/bus/ingest"
	_ "github.com/sinkbus/sinkbus/sinks/webhook" // integrations of type webhook come as JSON
)

// One hook maps each bearer token to its caller, for the management API and
// the ingestion webhook alike: acme manages its own integrations and
// publishes its own events; another tenant's integration is not found.
func Example() {
	b, err := bus.New(bus.Config{}) // in memory
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	who, err := access.Bearer(map[string]access.Caller{
		"admin-token":  access.Admin(),
		"acme-token":   access.Tenant("acme"),
		"globex-token": access.Tenant("globex"),
	})
	if err != nil {
		log.Fatal(err)
	}
	mgmt, err := api.New(b, api.Options{Caller: who})
	if err != nil {
		log.Fatal(err)
	}
	ing, err := ingest.New(b, ingest.Options{Caller: who})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/api/", http.StripPrefix("/api", mgmt))
	mux.Handle("/ingest", ing)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	call := func(method, path, token, body string) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		fmt.Println(method, path, "as", strings.TrimSuffix(token, "-token"), "→", resp.StatusCode)
	}
	call("POST", "/api/integrations", "globex-token",
		`{"id":"erp-sync","integration_type":"webhook","configuration":{"url":"https://erp.example.com/hooks"}}`)
	call("GET", "/api/integrations/erp-sync", "globex-token", "")
	call("GET", "/api/integrations/erp-sync", "acme-token", "")
	call("GET", "/api/tenants/globex/integrations/erp-sync", "acme-token", "")
	call("GET", "/api/tenants/globex/integrations/erp-sync", "admin-token", "")
	call("POST", "/ingest", "acme-token", `{"data":{"uid":"u-1","event":"product.created","value":{}}}`)
	call("GET", "/api/integrations", "", "")
	// Output:
	// POST /api/integrations as globex → 201
	// GET /api/integrations/erp-sync as globex → 200
	// GET /api/integrations/erp-sync as acme → 404
	// GET /api/tenants/globex/integrations/erp-sync as acme → 404
	// GET /api/tenants/globex/integrations/erp-sync as admin → 200
	// POST /ingest as acme → 200
	// GET /api/integrations as  → 401
}
