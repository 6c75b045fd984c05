package ingest_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/sinkbus/sinkbus/bus/ingest"
	"github.com/sinkbus/sinkbus/field"
)

// FuzzDecode checks that Decode never panics, that every error is a field
// error, and that an accepted body's event survives a round trip.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		starterKitBody,
		`{"data":{"uid":"u","event":"a.b","value":null}}`,
		`{"data":{"uid":"u","event":"a.b","value":[1,{"x":"\u00e9"}]}}`,
		`{"data":{"uid":7}}`, `{"data":[]}`, `{}`, `[]`, `null`, `{"data":`, "",
		`{"data":{"uid":"u","event":"a.b","value":1,"extra":true},"more":1}`,
		`{"data":{"uid":"<u>","event":"a&b","value":"<script>"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		e, err := ingest.Decode(body)
		if err != nil {
			for _, fe := range field.Errors(err) {
				var target *field.Error
				if !errors.As(fe, &target) {
					t.Fatalf("not a field error: %v", fe)
				}
			}
			return
		}
		if e.ID == "" || e.Name == "" || !json.Valid(e.Payload) {
			t.Fatalf("accepted an incomplete event: %+v", e)
		}
		var again bytes.Buffer
		enc := json.NewEncoder(&again)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(map[string]any{"data": map[string]any{
			"uid": e.ID, "event": e.Name, "value": json.RawMessage(e.Payload)}}); err != nil {
			t.Fatal(err)
		}
		e2, err := ingest.Decode(again.Bytes())
		if err != nil {
			t.Fatalf("round trip: %v", err)
		}
		if e2.ID != e.ID || e2.Name != e.Name || string(e2.Payload) != string(e.Payload) {
			t.Fatalf("round trip changed the event: %+v != %+v", e2, e)
		}
	})
}
