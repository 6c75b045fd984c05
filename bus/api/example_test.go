package api_test

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
)

// An application mounts the management API under /api and creates a
// webhook integration from Elastic Path's JSON; the answer comes in the
// same envelope, its secret masked.
func Example() {
	b, err := bus.New(bus.Config{}) // in memory
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	h, err := api.New(b, api.Options{Caller: access.Anyone(access.Admin()), BaseURL: "https://shop.example.com/api"})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/api/", http.StripPrefix("/api", h))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	resp, err := http.Post(srv.URL+"/api/integrations", "application/json", strings.NewReader(`{
	  "data": {
	    "id": "shipping-email",
	    "type": "integration",
	    "name": "Order shipping notification",
	    "integration_type": "webhook",
	    "enabled": true,
	    "observes": ["order.fulfilled"],
	    "configuration": {
	      "url": "https://ilovelamp.now.sh/send-shipped-email",
	      "secret_key": "SOME_SECRET_KEY"
	    }
	  }
	}`))
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.Status)
	for _, field := range []string{`"secret_key":"****_KEY"`, `"self":"https://shop.example.com/api/integrations/shipping-email"`, `"status":"running"`} {
		fmt.Println(strings.Contains(string(body), field), field)
	}
	// Output:
	// 201 Created
	// true "secret_key":"****_KEY"
	// true "self":"https://shop.example.com/api/integrations/shipping-email"
	// true "status":"running"
}
