package filter_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/sinkbus/sinkbus/filter"
)

// benchPatterns returns n patterns over 97 entities: mostly exact names,
// with "entity.*", "**.event" and "entity.**.event" mixed in.
func benchPatterns(n int) []string {
	ps := make([]string, 0, n)
	for i := 0; len(ps) < n; i++ {
		ent := fmt.Sprintf("entity%d", i%97)
		switch i % 10 {
		case 0:
			ps = append(ps, fmt.Sprintf("%s.*.sub%d", ent, i))
		case 1:
			ps = append(ps, fmt.Sprintf("**.event%d", i))
		case 2:
			ps = append(ps, fmt.Sprintf("%s.**.event%d", ent, i))
		default:
			ps = append(ps, fmt.Sprintf("%s.event%d.sub%d", ent, i, i%7))
		}
	}
	return ps
}

func BenchmarkMatch(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		patterns := benchPatterns(n)
		f, err := filter.Compile(patterns, filter.Conditions{})
		if err != nil {
			b.Fatal(err)
		}
		hit := patterns[len(patterns)-1] // an exact name
		miss := "entity5.event5.sub5.nothing"
		if !f.Match(hit, nil) || f.Match(miss, nil) {
			b.Fatal("benchmark names do not match as expected")
		}
		for _, tc := range []struct{ kind, name string }{{"hit", hit}, {"miss", miss}} {
			b.Run(fmt.Sprintf("patterns=%d/%s", n, tc.kind), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					f.Match(tc.name, nil)
				}
			})
		}
	}
}

// BenchmarkMatchName_literal is an integration observing one name, judging
// events of another: what each of many such integrations pays per event.
func BenchmarkMatchName_literal(b *testing.B) {
	f, err := filter.Compile([]string{"order.created"}, filter.Conditions{})
	if err != nil {
		b.Fatal(err)
	}
	if f.MatchName("cart.updated") || !f.MatchName("order.created") {
		b.Fatal("benchmark names do not match as expected")
	}
	for b.Loop() {
		f.MatchName("cart.updated")
	}
}

func BenchmarkMatch_payload(b *testing.B) {
	f, err := filter.Compile([]string{"order.**"}, filter.Conditions{Payload: json.RawMessage(`{
		"total": {"$gte": 100},
		"$or": [{"currency": {"$in": ["EUR", "CHF"]}}, {"customer.vip": true}],
		"items.0.sku": {"$exist": true}
	}`)})
	if err != nil {
		b.Fatal(err)
	}
	payload := benchPayload()
	if !f.Match("order.fulfilled", payload) {
		b.Fatal("benchmark payload does not match")
	}
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		f.Match("order.fulfilled", payload)
	}
}

// benchPayload is a 1 KiB order.
func benchPayload() []byte {
	type item struct {
		SKU   string  `json:"sku"`
		Name  string  `json:"name"`
		Qty   int     `json:"qty"`
		Price float64 `json:"price"`
	}
	order := map[string]any{
		"id":         "ord_01HZX3J9Q2M7",
		"total":      240.75,
		"currency":   "EUR",
		"created_at": "2026-03-01T10:00:00Z",
		"customer": map[string]any{
			"id": "cus_42", "email": "jane@example.com", "vip": false,
			"address": map[string]any{"line1": "Invalidenstr. 116", "city": "Berlin", "zip": "10115", "country": "DE"},
		},
		"items": []item{
			{"SKU-1001", "Linen shirt, blue, size M", 2, 49.9},
			{"SKU-2002", "Canvas sneakers, white, size 42", 1, 89},
			{"SKU-3003", "Leather belt, brown, 95 cm", 1, 51.95},
		},
		"shipping": map[string]any{"method": "express", "carrier": "DHL", "price": 9.95},
		"notes":    "Please leave the parcel with the neighbour at number 14 if nobody answers the door.",
	}
	out, err := json.Marshal(order)
	if err != nil {
		panic(err)
	}
	for len(out) < 1024 {
		order["notes"] = order["notes"].(string) + " Thanks!"
		out, _ = json.Marshal(order)
	}
	return out
}

// BenchmarkValidJSON is the check every published payload goes through.
func BenchmarkValidJSON(b *testing.B) {
	payload := []byte(`{"order_id":"o-1","items":[{"sku":"a","qty":2,"price":12.5}],"note":"` +
		strings.Repeat("lorem ipsum dolor sit amet ", 36) + `"}`)
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		if !filter.ValidJSON(payload) {
			b.Fatal("invalid")
		}
	}
}
