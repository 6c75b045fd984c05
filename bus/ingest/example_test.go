package ingest_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/ingest"
	"github.com/sinkbus/sinkbus/replay"
	"github.com/sinkbus/sinkbus/sinks"
)

// A third-party system posts the starter kit's payload with a bearer token;
// the event lands in the bus under its uid.
func Example() {
	b, err := bus.New(bus.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	h, err := ingest.New(b, ingest.Options{
		Authenticate: ingest.Bearer("s3cr3t-token-of-the-erp"),
		Events:       []string{"be-observer.*"},
	})
	if err != nil {
		log.Fatal(err)
	}

	req := httptest.NewRequest(http.MethodPost, "/ingest", strings.NewReader(
		`{"data":{"uid":"event_uid_1","event":"be-observer.catalog_product_create","value":{"sku":"PRODUCT_SKU"}}}`))
	req.Header.Set("Authorization", "Bearer s3cr3t-token-of-the-erp")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	fmt.Println(rec.Code, strings.TrimSpace(rec.Body.String()))

	// The journal holds it, with the uid as its id.
	_ = b.Events().Scan(context.Background(), time.Time{}, time.Now().Add(time.Hour), func(r replay.Record) bool {
		fmt.Println(r.UUID, r.Metadata[sinks.MetaName], string(r.Payload))
		return true
	})
	// Output:
	// 200 {"type":"be-observer.catalog_product_create","response":{"success":true,"message":"Event published successfully"}}
	// event_uid_1 be-observer.catalog_product_create {"sku":"PRODUCT_SKU"}
}
