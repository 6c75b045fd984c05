package api_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/access"
	"github.com/sinkbus/sinkbus/bus/api"
	"github.com/sinkbus/sinkbus/bus/bustest"
	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/webhook"
)

// The secrets of the integration every fuzzed PATCH is applied to.
var fuzzSecrets = []string{
	"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", // secret_key
	"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9",   // api_key
	"k-1234567890abcdef",                     // headers.X-Api-Key
}

var fuzzTarget = `{"id":"fz","integration_type":"webhook","observes":["order.*"],"configuration":{
	"url":"https://erp.example.com/hooks",
	"secret_key":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
	"api_key":"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9",
	"headers":{"X-Api-Key":"k-1234567890abcdef"}}}`

// secretKeys are the configuration fields whose values are secrets.
var secretKeys = map[string]bool{
	"secret_key": true, "previous_secret_key": true, "api_key": true, "password": true,
	"passcode": true, "aws_secret_access_key": true,
}

// FuzzAPI_request_bodies sends arbitrary bodies to POST /integrations and
// PATCH /integrations/{id} through the handler, in every shape. Whatever the
// body: no 5xx (the in-memory bus has no storage to fail, and its sinks
// start), a JSON answer (but for 204), every secret masked in every answer
// and quoted in none, and a refused PATCH changes nothing.
func FuzzAPI_request_bodies(f *testing.F) {
	// Only sinks that neither dial nor write files while being built.
	tb := bustest.New(f, func(c *bus.Config) {
		c.Sinks = sinks.NewRegistry(webhook.Type, sinks.Type{Name: bustest.SinkType,
			Decode: func(json.RawMessage) (sinks.Config, error) { return bustest.NewSink(), nil }})
		c.AllowPrivateNetworks = false
	})
	h, err := api.New(tb.Bus, api.Options{Caller: access.Anyone(access.Admin())})
	if err != nil {
		f.Fatal(err)
	}
	serve := func(t *testing.T, method, path string, body []byte) *httptest.ResponseRecorder {
		t.Helper()
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(method, path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		h.ServeHTTP(rec, req)
		return rec
	}
	reset := func(t *testing.T) {
		t.Helper()
		if rec := serve(t, "DELETE", "/integrations/fz", nil); rec.Code != http.StatusNoContent && rec.Code != http.StatusNotFound {
			t.Fatalf("DELETE fz: %d %s", rec.Code, rec.Body)
		}
		if rec := serve(t, "POST", "/integrations", []byte(fuzzTarget)); rec.Code != http.StatusCreated {
			t.Fatalf("POST fz: %d %s", rec.Code, rec.Body)
		}
	}

	seeds, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	patches := []string{
		`{"name":"renamed"}`, `{"configuration":{"secret_key":"****LaSw","url":"https://erp.example.com/v2"}}`,
		`{"data":{"observes":["order.created"],"enabled":false}}`, `{"callback_parameters":{"api_key":"new-api-key-0123456789"}}`,
		`{"status":"stopped"}`, `{"kind":"temporary"}`, `{"configuration":null}`, `{"observes":null}`,
		`{"data":{"type":"product"}}`, `{"configuration":{"headers":{"X-Api-Key":null,"X-Other":"other-secret-value-1234"}}}`,
		`{"configuration":{"allow_private_networks":true}}`, `[]`, `null`, `{`, ``,
	}
	for i, path := range seeds {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, []byte(patches[i%len(patches)]))
	}
	for _, p := range patches {
		f.Add([]byte(`{"integration_type":"bustest","observes":["*"]}`), []byte(p))
	}
	f.Add([]byte(`{"data":{"type":"integration","integration_type":"webhook","configuration":{"url":"https://x.example","secret_key":"whsec_%%%notbase64"}}}`), []byte(`{}`))
	f.Add([]byte(`{"integration_type":"webhook","configuration":{"url":"http://127.0.0.1/x","api_key":"api-key-quoted-nowhere-42","allow_private_networks":true}}`), []byte(`{"id":"fz"}`))

	f.Fuzz(func(t *testing.T, create, patch []byte) {
		reset(t)

		rec := serve(t, "POST", "/integrations", create)
		checkAnswer(t, "POST", create, rec)
		if rec.Code < 300 {
			id := createdID(t, rec.Body.Bytes())
			if del := serve(t, "DELETE", "/integrations/"+id, nil); del.Code != http.StatusNoContent {
				t.Fatalf("DELETE %q: %d %s", id, del.Code, del.Body)
			}
		}

		before := serve(t, "GET", "/integrations/fz", nil).Body.String()
		rec = serve(t, "PATCH", "/integrations/fz", patch)
		checkAnswer(t, "PATCH", patch, rec)
		if rec.Code >= 400 {
			if after := serve(t, "GET", "/integrations/fz", nil).Body.String(); after != before {
				t.Fatalf("a refused PATCH (%d) changed the integration:\n%s\n%s", rec.Code, before, after)
			}
		}
	})
}

// checkAnswer checks one answer to a request with body sent.
func checkAnswer(t *testing.T, method string, sent []byte, rec *httptest.ResponseRecorder) {
	t.Helper()
	body := rec.Body.Bytes()
	if rec.Code >= 500 {
		t.Fatalf("%s %q answered %d: %s", method, sent, rec.Code, body)
	}
	if rec.Code == http.StatusNoContent {
		return
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("%s answered %d with invalid JSON: %s", method, rec.Code, body)
	}
	if path, bad := unmaskedSecret(v, ""); bad {
		t.Fatalf("%s answered an unmasked secret at %s: %s", method, path, body)
	}
	// Secrets of the stored integration and of the request appear nowhere,
	// unless the request itself carries the same text elsewhere.
	for _, s := range append(requestSecrets(sent), fuzzSecrets...) {
		if !bytes.Contains(body, []byte(s)) {
			continue
		}
		if isSecretOf(s, sent) {
			t.Fatalf("%s answered %d quoting the secret %q: %s", method, rec.Code, s, body)
		}
	}
}

// unmaskedSecret finds a secret field of an answer that is not masked:
// secret fields, custom header values.
func unmaskedSecret(v any, path string) (string, bool) {
	switch v := v.(type) {
	case map[string]any:
		for k, sub := range v {
			p := path + "." + k
			if s, ok := sub.(string); ok && secretKeys[k] && s != "" && !sinks.IsMasked(s) {
				return p, true
			}
			if hs, ok := sub.(map[string]any); ok && k == "headers" {
				for hk, hv := range hs {
					if s, ok := hv.(string); ok && s != "" && !sinks.IsMasked(s) {
						return p + "." + hk, true
					}
				}
			}
			if p, bad := unmaskedSecret(sub, p); bad {
				return p, true
			}
		}
	case []any:
		for _, sub := range v {
			if p, bad := unmaskedSecret(sub, path+"[]"); bad {
				return p, true
			}
		}
	}
	return "", false
}

// requestSecrets are the values of a request's secret fields and header
// values that Mask would not reduce to "****" alone.
func requestSecrets(sent []byte) []string {
	var v any
	if json.Unmarshal(sent, &v) != nil {
		return nil
	}
	var out []string
	var walk func(v any, headers bool)
	walk = func(v any, headers bool) {
		switch v := v.(type) {
		case map[string]any:
			for k, sub := range v {
				if s, ok := sub.(string); ok && (headers || secretKeys[k]) && len(s) >= 12 {
					out = append(out, s)
				}
				walk(sub, k == "headers")
			}
		case []any:
			for _, sub := range v {
				walk(sub, false)
			}
		}
	}
	walk(v, false)
	return out
}

// isSecretOf reports whether s occurs in the request only as a secret
// (or not at all): an answer may echo a name or a URL that happens to
// hold the same text.
func isSecretOf(s string, sent []byte) bool {
	var v any
	if json.Unmarshal(sent, &v) != nil {
		return !bytes.Contains(sent, []byte(s))
	}
	elsewhere := false
	var walk func(v any, secret bool)
	walk = func(v any, secret bool) {
		switch v := v.(type) {
		case map[string]any:
			for k, sub := range v {
				if strings.Contains(k, s) {
					elsewhere = true
				}
				walk(sub, secretKeys[k] || k == "headers" || secret && isMap(sub))
			}
		case []any:
			for _, sub := range v {
				walk(sub, false)
			}
		case string:
			if !secret && strings.Contains(v, s) {
				elsewhere = true
			}
		}
	}
	walk(v, false)
	return !elsewhere
}

func isMap(v any) bool { _, ok := v.(map[string]any); return ok }

// createdID reads the id of a created integration in any shape.
func createdID(t *testing.T, body []byte) string {
	t.Helper()
	var out struct {
		ID   string `json:"id"`
		Data struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	if out.ID == "" {
		out.ID = out.Data.ID
	}
	if out.ID == "" {
		t.Fatalf("no id in %s", body)
	}
	return out.ID
}
