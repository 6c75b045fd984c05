package admin_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/access"
	"github.com/sinkbus/sinkbus/bus/admin"
	"github.com/sinkbus/sinkbus/sinks/webhook"
)

// An application mounts the admin page under /admin behind its own
// authentication (here a bearer token), with Activity counting the last
// hour's deliveries beside its other observers.
func Example() {
	activity := admin.NewActivity()
	b, err := bus.New(bus.Config{Observer: bus.Observers(activity)}) // in memory
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	if _, err := b.Integrations().Create(context.Background(), bus.Integration{ID: "erp-sync", Name: "ERP order sync",
		Observes: []string{"order.*"}, Sink: webhook.Config{URL: "https://erp.example.com/hooks", SecretKey: "whsec_c2VjcmV0"}}); err != nil {
		log.Fatal(err)
	}

	who, err := access.Bearer(map[string]access.Caller{"admin-token": access.Admin()})
	if err != nil {
		log.Fatal(err)
	}
	page, err := admin.New(b, admin.Options{Caller: who, Activity: activity})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/admin/", http.StripPrefix("/admin", page))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/admin/", nil)
	req.Header.Set("Authorization", "Bearer admin-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	html, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.Status)
	fmt.Println(strings.Contains(string(html), `<a href="integrations/erp-sync">ERP order sync</a>`))
	// Output:
	// 200 OK
	// true
}
