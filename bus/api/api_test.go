package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/access"
	"github.com/sinkbus/sinkbus/bus/api"
	"github.com/sinkbus/sinkbus/bus/bustest"
	"github.com/sinkbus/sinkbus/bus/formats"
	"github.com/sinkbus/sinkbus/field"
	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/sinks"
)

var ctx = context.Background()

const whsec = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func TestAPI_create_accepts_the_elastic_path_webhook_example_and_answers_in_its_envelope(t *testing.T) {
	s := newServer(t, api.Options{})
	resp := s.do("POST", "/integrations", sample(t, "elastic_path_webhook.json"))
	require.Equal(t, http.StatusCreated, resp.status, "%s", resp.body)
	d := resp.data(t)
	assert.Equal(t, "328b4e0b-4032-48d0-8c85-04cc4c0a331d", d["id"])
	assert.Equal(t, "integration", d["type"])
	assert.Equal(t, "webhook", d["integration_type"])
	assert.Equal(t, "Order shipping notification", d["name"])
	assert.Equal(t, "Send a shipping notification via email with discount code.", d["description"])
	assert.Equal(t, true, d["enabled"])
	assert.Equal(t, []any{"order.fulfilled"}, d["observes"])
	cfg := d["configuration"].(map[string]any)
	assert.Equal(t, "https://ilovelamp.now.sh/send-shipped-email", cfg["url"])
	assert.Equal(t, sinks.Mask("SOME_SECRET_KEY"), cfg["secret_key"])
	assert.NotContains(t, string(resp.body), "SOME_SECRET_KEY")
	assert.Equal(t, map[string]any{"self": s.URL + "/v2/integrations/328b4e0b-4032-48d0-8c85-04cc4c0a331d"}, d["links"])
	ts := d["meta"].(map[string]any)["timestamps"].(map[string]any)
	assert.Equal(t, "2026-01-01T00:00:00.000Z", ts["created_at"])
	assert.Equal(t, "2026-01-01T00:00:00.000Z", ts["updated_at"])
}

func TestAPI_create_accepts_the_elastic_path_aws_sqs_example_with_its_documented_response_fields(t *testing.T) {
	s := newServer(t, api.Options{BaseURL: "https://useast.api.elasticpath.com/v2/"})
	resp := s.do("POST", "/integrations", sample(t, "elastic_path_aws_sqs_request.json"))
	require.Equal(t, http.StatusCreated, resp.status, "%s", resp.body)
	d := resp.data(t)

	var want map[string]any
	require.NoError(t, json.Unmarshal([]byte(sample(t, "elastic_path_aws_sqs_response.json")), &want))
	assert.Subset(t, keys(d, ""), keys(want["data"].(map[string]any), ""), "every field of the documented response")

	cfg := d["configuration"].(map[string]any)
	assert.Equal(t, "****PSYQ", cfg["aws_access_key_id"])
	assert.Equal(t, "****pUSJ", cfg["aws_secret_access_key"])
	assert.Equal(t, "eu-west-1", cfg["region"])
	assert.Equal(t, "https://sqs.eu-west-1.amazonaws.com/123456789/epcc-external-queue", cfg["url"])
	assert.NotContains(t, string(resp.body), "mgJteE7dZgSLC2eo2vKsAUWRSnchrWzCRnoDpUSJ")
	assert.NotContains(t, string(resp.body), "ASIAJLVYNHUWCPKOPSYQ")
	id := d["id"].(string)
	assert.Regexp(t, `^[a-z0-9-]{1,50}$`, id)
	assert.Equal(t, "https://useast.api.elasticpath.com/v2/integrations/"+id, d["links"].(map[string]any)["self"])
}

func TestAPI_create_accepts_the_elastic_path_stomp_example_with_its_links_and_meta(t *testing.T) {
	s := newServer(t, api.Options{})
	// The page hides the password behind stars: sent as it is, the stars
	// would become the password.
	resp := s.do("POST", "/integrations", sample(t, "elastic_path_stomp_request.json"))
	require.Equal(t, http.StatusBadRequest, resp.status, "%s", resp.body)
	assert.Equal(t, []string{"data.configuration.password"}, fieldsOf(resp.errorBody(t)))

	resp = s.do("POST", "/integrations", strings.Replace(sample(t, "elastic_path_stomp_request.json"),
		`"*******d123"`, `"a-real-password-123"`, 1))
	require.Equal(t, http.StatusCreated, resp.status, "%s", resp.body)
	d := resp.data(t)
	assert.Equal(t, "stomp", d["integration_type"])
	assert.Equal(t, "Customer address updated", d["name"])
	cfg := d["configuration"].(map[string]any)
	assert.Equal(t, []any{"stomp://useast.api.elasticpath.com"}, cfg["addresses"])
	assert.Equal(t, "/queue/queue1", cfg["destination"])
	assert.Equal(t, "user1", cfg["username"])
	assert.Equal(t, "****-123", cfg["password"])
	// links and meta are the server's: the request's are ignored.
	assert.Equal(t, s.URL+"/v2/integrations/"+d["id"].(string), d["links"].(map[string]any)["self"])
	assert.NotEqual(t, "2021-11-11T10:45:04.688Z", d["meta"].(map[string]any)["timestamps"].(map[string]any)["created_at"])
}

func TestAPI_create_accepts_the_newstore_webhook_sample_and_answers_in_its_shape(t *testing.T) {
	s := newServer(t, api.Options{})
	// A deliberate departure from accepting the documented bodies verbatim: this
	// sample names no URL (NewStore's own page elides it), and a webhook
	// cannot do without one, so it is refused with 400 naming NewStore's
	// field; with a callback_url added the rest of it is accepted as is.
	resp := s.do("POST", "/integrations", sample(t, "newstore_webhook.json"))
	require.Equal(t, http.StatusBadRequest, resp.status, "%s", resp.body)
	e := resp.errorBody(t)
	assert.Equal(t, "validation_failed", e.ErrorCode)
	assert.Contains(t, e.Message, "callback_url: is required")
	assert.Equal(t, []api.FieldProblem{{Field: "callback_url", Message: "is required"}}, e.Errors)

	body := strings.Replace(sample(t, "newstore_webhook.json"), `"callback_parameters"`,
		`"callback_url": "https://erp.example.com/hooks", "callback_parameters"`, 1)
	resp = s.do("POST", "/integrations", body)
	require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
	got := resp.object(t)
	var want map[string]any
	require.NoError(t, json.Unmarshal([]byte(sample(t, "newstore_response.json")), &want))
	delete(want, "ends_at") // the sample is a temporary integration
	assert.Subset(t, keys(got, ""), keys(want, ""), "every field of the documented response")
	assert.Equal(t, "erp-netsuite-integration-002", got["id"])
	assert.Equal(t, "running", got["status"])
	assert.Equal(t, "permanent", got["integration_type"])
	assert.Equal(t, "2019-01-17T12:00:00Z", got["starts_at"])
	assert.Equal(t, "https://erp.example.com/hooks", got["callback_url"])
	assert.Equal(t, map[string]any{"api_key": sinks.Mask("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9")}, got["callback_parameters"])
	assert.NotContains(t, string(resp.body), "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9")
}

func TestAPI_create_accepts_the_newstore_s3_sample(t *testing.T) {
	s := newServer(t, api.Options{}, durable(t))
	resp := s.do("POST", "/integrations", sample(t, "newstore_s3.json"))
	require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
	got := resp.object(t)
	assert.Equal(t, "sap-s3-integration-002", got["id"])
	assert.Equal(t, "stopped", got["status"])
	assert.Equal(t, "permanent", got["integration_type"])
	assert.Equal(t, "2019-01-17T12:00:00Z", got["starts_at"])
	params := got["s3_parameters"].(map[string]any)
	assert.Equal(t, "****_key", params["aws_secret_access_key"])
	assert.NotContains(t, string(resp.body), "some_s3_secret_key")
	assert.Equal(t, "us-east-1", params["aws_region"])
	assert.Equal(t, "sap_export", params["bucket"])
	assert.Equal(t, "newstore_integration_002", params["key_prefix"])
	assert.Equal(t, "****y_id", params["aws_access_key_id"], "masked, as aws_sqs shows it")
	assert.NotContains(t, string(resp.body), "some_s3_access_key_id")
	assert.NotContains(t, got, "configuration")

	// And it reads back the same way in NewStore's shape.
	resp = s.do("GET", "/integrations/sap-s3-integration-002?format=newstore", "")
	require.Equal(t, http.StatusOK, resp.status)
	assert.Equal(t, got["s3_parameters"], resp.object(t)["s3_parameters"])
}

func TestAPI_list_answers_every_integration_in_the_chosen_shape(t *testing.T) {
	s := newServer(t, api.Options{}, durable(t))
	require.Equal(t, http.StatusCreated, s.do("POST", "/integrations", sample(t, "elastic_path_webhook.json")).status)
	require.Equal(t, http.StatusOK, s.do("POST", "/integrations", sample(t, "newstore_s3.json")).status)

	list := s.do("GET", "/integrations", "")
	require.Equal(t, http.StatusOK, list.status)
	items := list.object(t)["integrations"].([]any)
	require.Len(t, items, 2)
	first := items[0].(map[string]any)
	assert.Equal(t, "328b4e0b-4032-48d0-8c85-04cc4c0a331d", first["id"])
	assert.Equal(t, "webhook", first["integration_type"])
	assert.Equal(t, "permanent", first["kind"])
	assert.Equal(t, "running", first["status"])
	assert.Equal(t, "s3", items[1].(map[string]any)["integration_type"])

	ns := s.do("GET", "/integrations?format=newstore", "").object(t)["integrations"].([]any)
	assert.Equal(t, "permanent", ns[0].(map[string]any)["integration_type"])
	assert.Equal(t, "https://ilovelamp.now.sh/send-shipped-email", ns[0].(map[string]any)["callback_url"])
	assert.Equal(t, "stopped", ns[1].(map[string]any)["status"])

	ep := s.do("GET", "/integrations?format=elastic_path", "").object(t)["data"].([]any)
	assert.Equal(t, "integration", ep[0].(map[string]any)["type"])
	assert.Contains(t, ep[0].(map[string]any), "links")

	bad := s.do("GET", "/integrations?format=xml", "")
	assert.Equal(t, http.StatusBadRequest, bad.status)
	assert.Contains(t, bad.errorBody(t).Message, "format")
}

func TestAPI_get_answers_404_with_the_error_object_and_request_id(t *testing.T) {
	s := newServer(t, api.Options{})
	resp := s.do("GET", "/integrations/nope", "", "X-Request-Id", "req-123")
	require.Equal(t, http.StatusNotFound, resp.status)
	assert.Equal(t, "req-123", resp.header.Get("X-Request-Id"))
	e := resp.errorBody(t)
	assert.Equal(t, "integration_not_found", e.ErrorCode)
	assert.Equal(t, "req-123", e.RequestID)
	assert.Contains(t, e.Message, `"nope"`)

	// An implausible request id is replaced by a generated one.
	resp = s.do("GET", "/integrations/nope", "", "X-Request-Id", "bad id\twith spaces")
	assert.NotEqual(t, "bad id\twith spaces", resp.header.Get("X-Request-Id"))
	assert.NotEmpty(t, resp.errorBody(t).RequestID)

	for _, path := range []string{"/integrations/nope/log", "/integrations/nope/rejected_events",
		"/integrations/nope/rejected_events/e1", "/integrations/nope/circuit"} {
		assert.Equal(t, http.StatusNotFound, s.do("GET", path, "").status, path)
	}
	for _, path := range []string{"/integrations/nope/start", "/integrations/nope/stop",
		"/integrations/nope/circuit/reset", "/integrations/nope/replay", "/integrations/nope/rejected_events/e1/retry"} {
		assert.Equal(t, http.StatusNotFound, s.do("POST", path, "").status, path)
	}
	assert.Equal(t, http.StatusNotFound, s.do("DELETE", "/integrations/nope", "").status)
	assert.Equal(t, http.StatusNotFound, s.do("PATCH", "/integrations/nope", `{"name":"x"}`).status)
}

// fieldsOf lists the fields an error response names.
func fieldsOf(e api.Error) []string {
	fields := make([]string, len(e.Errors))
	for i, p := range e.Errors {
		fields[i] = p.Field
	}
	return fields
}

func TestAPI_create_answers_400_naming_every_invalid_field(t *testing.T) {
	s := newServer(t, api.Options{})
	const invalid = `"integration_type":"webhook","observes":["order..x"],
		"configuration":{"url":"ftp://example.com","secret_key":"whsec_%%%notbase64"}`
	// Each field is named by its path in the body the caller sent: under
	// "data." in Elastic Path's envelope, at the top in sinkbus's own shape.
	for _, tc := range []struct{ body, prefix string }{
		{`{"data":{"type":"integration",` + invalid + `}}`, "data."},
		{`{` + invalid + `}`, ""},
	} {
		resp := s.do("POST", "/integrations", tc.body)
		require.Equal(t, http.StatusBadRequest, resp.status)
		e := resp.errorBody(t)
		assert.Equal(t, "validation_failed", e.ErrorCode)
		for _, p := range e.Errors {
			assert.Contains(t, e.Message, p.Field+": "+p.Message)
		}
		assert.ElementsMatch(t, []string{tc.prefix + "observes[0]", tc.prefix + "configuration.url",
			tc.prefix + "configuration.secret_key"}, fieldsOf(e))
		assert.NotContains(t, string(resp.body), "notbase64", "errors never quote a secret")
	}

	for _, tc := range []struct{ body, field string }{
		{`{"data":{"type":"product","integration_type":"webhook"}}`, "data.type"},
		{`{"data":{"integration_type":"carrier_pigeon"}}`, "data.integration_type"},
		{`{"data":{"integration_type":"webhook","configuration":{"url":"https://x.example","colour":"red"}}}`, "data.configuration.colour"},
		{`{"data":{"integration_type":"webhook","enabled":"yes","configuration":{"url":"https://x.example"}}}`, "data.enabled"},
		{`{"integration_type":"carrier_pigeon"}`, "integration_type"},
		{`{"integration_type":"webhook","configuration":{"url":"https://x.example","colour":"red"}}`, "configuration.colour"},
		{`[1,2]`, ""},
		{`{"name":`, ""},
	} {
		resp := s.do("POST", "/integrations", tc.body)
		assert.Equal(t, http.StatusBadRequest, resp.status, tc.body)
		e := resp.errorBody(t)
		if tc.field != "" {
			require.NotEmpty(t, e.Errors, tc.body)
			assert.Equal(t, tc.field, e.Errors[0].Field, tc.body)
		}
	}
	assert.Equal(t, http.StatusBadRequest, s.do("POST", "/integrations", "").status)
}

func TestAPI_create_answers_409_for_a_duplicate_id_and_the_limit(t *testing.T) {
	s := newServer(t, api.Options{}, func(c *bus.Config) { c.MaxIntegrations = 2 })
	body := `{"id":"erp","integration_type":"bustest"}`
	require.Equal(t, http.StatusCreated, s.do("POST", "/integrations", body).status)
	dup := s.do("POST", "/integrations", body)
	require.Equal(t, http.StatusConflict, dup.status)
	assert.Equal(t, "integration_exists", dup.errorBody(t).ErrorCode)

	require.Equal(t, http.StatusCreated, s.do("POST", "/integrations", `{"integration_type":"bustest"}`).status)
	full := s.do("POST", "/integrations", `{"integration_type":"bustest"}`)
	require.Equal(t, http.StatusConflict, full.status)
	e := full.errorBody(t)
	assert.Equal(t, "integration_limit_reached", e.ErrorCode)
	assert.Contains(t, e.Message, "at most 2")
}

// A 500 shows no detail, and the failed operation leaves the integration as
// it was, so that the caller can send the same request again.
func TestAPI_internal_errors_answer_500_without_their_details_and_change_nothing(t *testing.T) {
	s := newServer(t, api.Options{})
	internal := func(resp response) {
		t.Helper()
		require.Equal(t, http.StatusInternalServerError, resp.status, "%s", resp.body)
		e := resp.errorBody(t)
		assert.Equal(t, "internal_error", e.ErrorCode)
		assert.Equal(t, "internal error", e.Message)
		assert.NotContains(t, string(resp.body), "hunter2")
	}
	status := func(id string) string {
		t.Helper()
		resp := s.do("GET", "/integrations/"+id, "")
		require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
		return resp.object(t)["status"].(string)
	}

	// Create: its sink cannot start. No integration is left behind (a
	// "running" one would deliver nothing), so the same request answers 500
	// again rather than 409.
	create := `{"id":"b","integration_type":"broken","configuration":{}}`
	internal(s.do("POST", "/integrations", create))
	assert.Equal(t, http.StatusNotFound, s.do("GET", "/integrations/b", "").status, "a failed create leaves nothing")
	internal(s.do("POST", "/integrations", create))
	assert.Empty(t, s.do("GET", "/integrations", "").object(t)["integrations"])

	// Start: created stopped, it cannot start, and stays stopped.
	require.Equal(t, http.StatusCreated, s.do("POST", "/integrations", `{"id":"s","integration_type":"broken","status":"stopped"}`).status)
	internal(s.do("POST", "/integrations/s/start", ""))
	assert.Equal(t, "stopped", status("s"), "a failed start does not change the status")
	internal(s.do("PATCH", "/integrations/s", `{"status":"running"}`))
	assert.Equal(t, "stopped", status("s"))
	internal(s.do("POST", "/integrations/s/start", ""))
	assert.Equal(t, "stopped", status("s"))
}

func TestAPI_patch_merges_and_keeps_secrets_sent_back_masked(t *testing.T) {
	s := newServer(t, api.Options{}, func(c *bus.Config) { c.Clock = nil }) // signatures carry real timestamps
	rcv := newReceiver(t, whsec)
	const apiKey = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
	create := fmt.Sprintf(`{"data":{"id":"erp","type":"integration","integration_type":"webhook",
		"observes":["order.created"],"configuration":{"url":%q,"secret_key":%q,"api_key":%q,
		"headers":{"X-Api-Key":"k-1234567890abcdef"},"allow_private_networks":true}}}`,
		rcv.URL+"/hooks", whsec, apiKey)
	require.Equal(t, http.StatusCreated, s.do("POST", "/integrations", create).status)

	// Read it back (masked), change the observes and the URL's path, send
	// everything back: the masked secrets keep their stored values.
	got := s.do("GET", "/integrations/erp?format=elastic_path", "")
	require.Equal(t, http.StatusOK, got.status)
	d := got.data(t)
	cfg := d["configuration"].(map[string]any)
	require.Equal(t, sinks.Mask(whsec), cfg["secret_key"])
	require.Equal(t, sinks.Mask("k-1234567890abcdef"), cfg["headers"].(map[string]any)["X-Api-Key"])
	d["observes"] = []any{"order.fulfilled"}
	cfg["url"] = rcv.URL + "/orders"
	patch, err := json.Marshal(map[string]any{"data": d})
	require.NoError(t, err)
	resp := s.do("PATCH", "/integrations/erp", string(patch))
	require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
	assert.Equal(t, []any{"order.fulfilled"}, resp.data(t)["observes"])
	assert.NotContains(t, string(resp.body), whsec)

	// NewStore's partial update: one callback parameter; the URL stays.
	resp = s.do("PATCH", "/integrations/erp", `{"callback_parameters":{"api_key":"`+sinks.Mask(apiKey)+`"}}`)
	require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
	assert.Equal(t, rcv.URL+"/orders", resp.object(t)["callback_url"])

	require.NoError(t, s.tb.Bus.Publish(ctx, bus.Event{ID: "e-1", Name: "order.fulfilled"}))
	rcv.wait(t, 1) // the receiver verifies the signature with the real secret
	require.Len(t, rcv.delivered(), 1)
	assert.Equal(t, "e-1", rcv.delivered()[0].ID)
	assert.Equal(t, []string{"Bearer " + apiKey}, rcv.authorizations())

	// A new secret replaces the stored one.
	resp = s.do("PATCH", "/integrations/erp", `{"configuration":{"secret_key":"whsec_bmV3LXNlY3JldC1rZXktZm9yLXRlc3Rz"}}`)
	require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
	rcv.setSecret("whsec_bmV3LXNlY3JldC1rZXktZm9yLXRlc3Rz")
	require.NoError(t, s.tb.Bus.Publish(ctx, bus.Event{ID: "e-2", Name: "order.fulfilled"}))
	rcv.wait(t, 1)
	require.Len(t, rcv.delivered(), 2)
}

func TestAPI_patch_answers_409_for_fields_that_cannot_change(t *testing.T) {
	s := newServer(t, api.Options{}, durable(t))
	require.Equal(t, http.StatusOK, s.do("POST", "/integrations", sample(t, "newstore_s3.json")).status)
	for _, tc := range []struct{ body, field string }{
		{`{"integration_type":"temporary"}`, "integration_type"}, // NewStore's kind
		{`{"kind":"temporary"}`, "kind"},
		{`{"starts_at":"2020-01-01T00:00:00Z"}`, "starts_at"},
		{`{"starts_at":null}`, "starts_at"},
		{`{"ends_at":"2030-01-01T00:00:00Z"}`, "ends_at"},
		{`{"id":"other"}`, "id"},
		{`{"data":{"integration_type":"webhook"}}`, "data.integration_type"},
	} {
		resp := s.do("PATCH", "/integrations/sap-s3-integration-002", tc.body)
		require.Equal(t, http.StatusConflict, resp.status, "%s: %s", tc.body, resp.body)
		e := resp.errorBody(t)
		assert.Equal(t, "immutable_field", e.ErrorCode, tc.body)
		assert.Equal(t, "cannot change after creation: "+tc.field, e.Message, tc.body)
	}
	// Repeating them unchanged is fine, in any notation of the same instant.
	resp := s.do("PATCH", "/integrations/sap-s3-integration-002",
		`{"integration_type":"permanent","starts_at":"2019-01-17T13:00:00+01:00","s3_parameters":{"bucket":"sap_export_2"}}`)
	require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
	p := resp.object(t)["s3_parameters"].(map[string]any)
	assert.Equal(t, "sap_export_2", p["bucket"])
	assert.Equal(t, "****_key", p["aws_secret_access_key"])

	bad := s.do("PATCH", "/integrations/sap-s3-integration-002", `{"observes":["a..b"]}`)
	assert.Equal(t, http.StatusBadRequest, bad.status)
	assert.Equal(t, "observes[0]", bad.errorBody(t).Errors[0].Field)
	bad = s.do("PATCH", "/integrations/sap-s3-integration-002", `{"data":{"observes":["a..b"]}}`)
	assert.Equal(t, http.StatusBadRequest, bad.status)
	assert.Equal(t, []string{"data.observes[0]"}, fieldsOf(bad.errorBody(t)))
}

// A running integration refuses the same changes, and stays as it was: it
// keeps running, unchanged and not restarted.
func TestAPI_patch_answers_409_for_fields_that_cannot_change_while_running(t *testing.T) {
	s := newServer(t, api.Options{})
	require.Equal(t, http.StatusCreated, s.do("POST", "/integrations", sample(t, "elastic_path_webhook.json")).status)
	const id = "/integrations/328b4e0b-4032-48d0-8c85-04cc4c0a331d"
	before := s.do("GET", id+"?format=elastic_path", "")
	require.Equal(t, http.StatusOK, before.status)
	require.Equal(t, "running", before.data(t)["status"])
	s.tb.Clock.Advance(time.Minute) // an update would move updated_at

	for _, tc := range []struct{ body, field string }{
		{`{"data":{"integration_type":"aws_sqs"}}`, "data.integration_type"},
		{`{"data":{"kind":"temporary"}}`, "data.kind"},
		{`{"data":{"starts_at":"2030-01-01T00:00:00Z"}}`, "data.starts_at"},
		{`{"data":{"ends_at":"2030-01-02T00:00:00Z"}}`, "data.ends_at"},
		{`{"data":{"id":"other"}}`, "data.id"},
		{`{"data":{"name":"Renamed","kind":"temporary"}}`, "data.kind"},
		{`{"integration_type":"temporary"}`, "integration_type"}, // NewStore's kind
		{`{"kind":"temporary","enabled":false}`, "kind"},
	} {
		resp := s.do("PATCH", id, tc.body)
		require.Equal(t, http.StatusConflict, resp.status, "%s: %s", tc.body, resp.body)
		e := resp.errorBody(t)
		assert.Equal(t, "immutable_field", e.ErrorCode, tc.body)
		assert.Equal(t, "cannot change after creation: "+tc.field, e.Message, tc.body)
		assert.Equal(t, []string{tc.field}, fieldsOf(e), tc.body)
	}

	after := s.do("GET", id+"?format=elastic_path", "")
	require.Equal(t, http.StatusOK, after.status)
	assert.Equal(t, before.data(t), after.data(t), "nothing changed, updated_at included")
	log := s.do("GET", id+"/log", "")
	require.Equal(t, http.StatusOK, log.status)
	var entries api.LogResponse
	require.NoError(t, json.Unmarshal(log.body, &entries))
	var actions []string
	for _, e := range entries.Entries {
		actions = append(actions, e.Action)
	}
	assert.Equal(t, []string{"integration_started", "integration_created"}, actions, "neither stopped nor updated")
}

func TestAPI_patch_enabled_and_status_stop_and_start(t *testing.T) {
	s := newServer(t, api.Options{})
	require.Equal(t, http.StatusCreated, s.do("POST", "/integrations", sample(t, "elastic_path_webhook.json")).status)
	id := "/integrations/328b4e0b-4032-48d0-8c85-04cc4c0a331d"
	resp := s.do("PATCH", id, `{"data":{"enabled":false}}`)
	require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
	assert.Equal(t, false, resp.data(t)["enabled"])
	assert.Equal(t, "stopped", resp.data(t)["status"])
	resp = s.do("PATCH", id, `{"status":"running"}`)
	require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
	assert.Equal(t, "running", resp.object(t)["status"])
	assert.Equal(t, http.StatusBadRequest, s.do("PATCH", id, `{"status":"paused"}`).status)
}

func TestAPI_start_stop_and_the_log_newest_first(t *testing.T) {
	s := newServer(t, api.Options{Format: formats.NewStore})
	require.Equal(t, http.StatusCreated, s.do("POST", "/integrations", `{"id":"wh","integration_type":"bustest"}`).status)

	resp := s.do("POST", "/integrations/wh/stop", "")
	require.Equal(t, http.StatusOK, resp.status)
	assert.Equal(t, "stopped", resp.object(t)["status"])
	assert.Equal(t, "permanent", resp.object(t)["integration_type"], "Options.Format is NewStore's")
	resp = s.do("POST", "/integrations/wh/start", "")
	require.Equal(t, http.StatusOK, resp.status)
	assert.Equal(t, "running", resp.object(t)["status"])

	resp = s.do("GET", "/integrations/wh/log", "")
	require.Equal(t, http.StatusOK, resp.status)
	var log struct {
		Entries []map[string]any `json:"entries"`
	}
	require.NoError(t, json.Unmarshal(resp.body, &log))
	var actions []string
	for _, e := range log.Entries {
		actions = append(actions, e["action"].(string))
		assert.Contains(t, e, "reason")
		assert.Contains(t, e, "created_at")
	}
	assert.Equal(t, []string{"integration_started", "integration_stopped", "integration_started", "integration_created"}, actions)
	assert.Equal(t, "Stopped via API.", log.Entries[1]["reason"])
}

func TestAPI_delete_answers_204_then_404(t *testing.T) {
	s := newServer(t, api.Options{})
	require.Equal(t, http.StatusCreated, s.do("POST", "/integrations", `{"id":"wh","integration_type":"bustest"}`).status)
	resp := s.do("DELETE", "/integrations/wh", "")
	assert.Equal(t, http.StatusNoContent, resp.status)
	assert.Empty(t, resp.body)
	assert.Equal(t, http.StatusNotFound, s.do("GET", "/integrations/wh", "").status)
}

func TestAPI_rejected_events_list_get_retry_and_delete(t *testing.T) {
	s := newServer(t, api.Options{}, func(c *bus.Config) { c.Clock = nil })
	rcv := newReceiver(t, whsec)
	rcv.status.Store(http.StatusBadRequest)
	body := fmt.Sprintf(`{"id":"erp","integration_type":"webhook","observes":["order.*"],
		"configuration":{"url":%q,"secret_key":%q,"allow_private_networks":true}}`, rcv.URL, whsec)
	require.Equal(t, http.StatusCreated, s.do("POST", "/integrations", body).status)

	payload := `{"id":"1431b891-c056-4f80-9d34-06479b383417","items":[{"product_id":"ASDF1000"}]}`
	require.NoError(t, s.tb.Bus.Publish(ctx,
		bus.Event{ID: "e-1", Name: "order.items_cancelled", Tenant: "businessname", Payload: json.RawMessage(payload)},
		bus.Event{ID: "e-2", Name: "order.created", Tenant: "businessname"}))
	rcv.wait(t, 2)
	var list api.RejectedList
	eventually(t, func() bool {
		resp := s.do("GET", "/integrations/erp/rejected_events", "")
		require.Equal(t, http.StatusOK, resp.status)
		require.NoError(t, json.Unmarshal(resp.body, &list))
		return len(list.RejectedEvents) == 2
	}, "two rejected events")
	raw := s.do("GET", "/integrations/erp/rejected_events", "").object(t)["rejected_events"].([]any)
	assert.Subset(t, keys(raw[0].(map[string]any), ""), []string{"created_at", "id", "status_code", "attempts"})
	assert.Equal(t, 400.0, raw[0].(map[string]any)["status_code"], "the destination's answer")
	assert.Equal(t, 1.0, raw[0].(map[string]any)["attempts"])

	resp := s.do("GET", "/integrations/erp/rejected_events/e-1", "")
	require.Equal(t, http.StatusOK, resp.status)
	got := resp.object(t)
	assert.Equal(t, "businessname", got["tenant"])
	assert.Equal(t, "order.items_cancelled", got["name"])
	assert.Equal(t, "e-1", got["id"])
	assert.Contains(t, got, "published_at")
	assert.Contains(t, got["reason"], "HTTP status code 400")
	gotPayload, err := json.Marshal(got["payload"])
	require.NoError(t, err)
	assert.JSONEq(t, payload, string(gotPayload))

	// The destination still refuses it: 502, and it stays.
	resp = s.do("POST", "/integrations/erp/rejected_events/e-1/retry", "")
	rcv.wait(t, 1)
	require.Equal(t, http.StatusBadGateway, resp.status, "%s", resp.body)
	e := resp.errorBody(t)
	assert.Equal(t, "destination_failed", e.ErrorCode)
	assert.Contains(t, e.Message, "HTTP status code 400")
	assert.Equal(t, http.StatusOK, s.do("GET", "/integrations/erp/rejected_events/e-1", "").status)

	// Now it takes it: 204, and it leaves the store.
	rcv.status.Store(http.StatusNoContent)
	resp = s.do("POST", "/integrations/erp/rejected_events/e-1/retry", "")
	rcv.wait(t, 1)
	require.Equal(t, http.StatusNoContent, resp.status, "%s", resp.body)
	assert.Equal(t, "e-1", rcv.delivered()[0].ID)
	notFound := s.do("GET", "/integrations/erp/rejected_events/e-1", "")
	require.Equal(t, http.StatusNotFound, notFound.status)
	assert.Equal(t, "rejected_event_not_found", notFound.errorBody(t).ErrorCode)
	assert.Equal(t, http.StatusNotFound, s.do("POST", "/integrations/erp/rejected_events/e-1/retry", "").status)

	assert.Equal(t, http.StatusNoContent, s.do("DELETE", "/integrations/erp/rejected_events/e-2", "").status)
	assert.Equal(t, http.StatusNotFound, s.do("DELETE", "/integrations/erp/rejected_events/e-2", "").status)

	// Retrying needs a running integration.
	rcv.status.Store(http.StatusBadRequest)
	require.NoError(t, s.tb.Bus.Publish(ctx, bus.Event{ID: "e-3", Name: "order.created"}))
	rcv.wait(t, 1)
	eventually(t, func() bool {
		_, err := s.tb.Integrations().RejectedEvent(ctx, "erp", "e-3")
		return err == nil
	}, "e-3 rejected")
	require.Equal(t, http.StatusOK, s.do("POST", "/integrations/erp/stop", "").status)
	resp = s.do("POST", "/integrations/erp/rejected_events/e-3/retry", "")
	require.Equal(t, http.StatusConflict, resp.status)
	assert.Equal(t, "integration_not_running", resp.errorBody(t).ErrorCode)
}

func TestAPI_circuit_state_reset_and_retry_while_open(t *testing.T) {
	s := newServer(t, api.Options{})
	// The cool-down is far longer than any backoff: only the reset below
	// can let the waiting event through.
	sink := s.tb.NewSinkIntegration(bus.Integration{ID: "q", Delivery: middleware.Settings{
		Breaker: middleware.BreakerPolicy{WarnAfter: 1, OpenAfter: 1, CoolDown: time.Hour, MaxCoolDown: time.Hour},
	}})
	resp := s.do("GET", "/integrations/q/circuit", "")
	require.Equal(t, http.StatusOK, resp.status)
	assert.Equal(t, "closed", resp.object(t)["state"])

	// One event refused for good (a 4XX does not count for the breaker)...
	sink.FailNext(1, http.StatusBadRequest)
	s.tb.MustPublish(bus.Event{ID: "e-0", Name: "order.created"})
	eventually(t, func() bool {
		return s.do("GET", "/integrations/q/rejected_events/e-0", "").status == http.StatusOK
	}, "e-0 rejected")
	// ...then the destination goes down.
	sink.FailNext(1, http.StatusServiceUnavailable)
	s.tb.MustPublish(bus.Event{ID: "e-1", Name: "order.created"})
	var state map[string]any
	eventually(t, func() bool {
		state = s.do("GET", "/integrations/q/circuit", "").object(t)
		return state["state"] == "open"
	}, "the circuit opens")
	assert.EqualValues(t, 1, state["consecutive_failures"])
	assert.Contains(t, state, "next_probe_at")

	// A manual retry while the circuit is open is not even attempted.
	resp = s.do("POST", "/integrations/q/rejected_events/e-0/retry", "")
	require.Equal(t, http.StatusServiceUnavailable, resp.status, "%s", resp.body)
	assert.Equal(t, "circuit_open", resp.errorBody(t).ErrorCode)

	resp = s.do("POST", "/integrations/q/circuit/reset", "")
	require.Equal(t, http.StatusOK, resp.status)
	assert.Equal(t, "closed", resp.object(t)["state"])
	// The waiting event goes through, at once or after its retry's backoff
	// (never the cool-down's probe, an hour away).
	eventually(t, func() bool {
		if d, ok := s.tb.Clock.NextDue(); ok && d <= time.Minute {
			s.tb.Clock.Advance(d)
		}
		return len(sink.Events()) == 1
	}, "e-1 delivered after the reset")
	assert.Equal(t, "e-1", sink.Events()[0].ID)
	require.Equal(t, http.StatusNoContent, s.do("POST", "/integrations/q/rejected_events/e-0/retry", "").status)
	assert.Equal(t, "e-0", sink.WaitFor(t, 2)[1].ID)
}

func TestAPI_replay_counts_and_delivers_again(t *testing.T) {
	s := newServer(t, api.Options{})
	sink := s.tb.NewSinkIntegration(bus.Integration{ID: "q", Observes: []string{"order.*"}})
	s.tb.MustPublish(bus.Event{Name: "order.created"}, bus.Event{Name: "order.fulfilled"}, bus.Event{Name: "cart.updated"})
	sink.WaitFor(t, 2)
	s.tb.Clock.Advance(time.Second)

	resp := s.do("POST", "/integrations/q/replay", `{"dry_run":true}`)
	require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
	assert.EqualValues(t, 2, resp.object(t)["matched"])
	assert.NotContains(t, resp.object(t), "replay_id")

	resp = s.do("POST", "/integrations/q/replay", `{"from":"2025-12-31T00:00:00Z","to":"2026-01-01T00:00:01Z"}`)
	require.Equal(t, http.StatusAccepted, resp.status, "%s", resp.body)
	var job api.ReplayResponse
	require.NoError(t, json.Unmarshal(resp.body, &job))
	assert.Equal(t, 2, job.Matched)
	assert.NotEmpty(t, job.ReplayID)
	require.NotNil(t, job.From)
	assert.Equal(t, time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC), *job.From, "the range asked for")
	assert.Equal(t, time.Date(2026, 1, 1, 0, 0, 1, 0, time.UTC), job.To)
	assert.False(t, job.Partial)
	assert.Zero(t, job.Missing)
	got := sink.WaitFor(t, 4)
	assert.ElementsMatch(t, []string{"order.created", "order.fulfilled"}, []string{got[2].Name, got[3].Name})

	for _, body := range []string{`{"from":"yesterday"}`, `{"dry":true}`,
		`{"from":"2026-01-02T00:00:00Z","to":"2026-01-01T00:00:00Z"}`} {
		resp := s.do("POST", "/integrations/q/replay", body)
		assert.Equal(t, http.StatusBadRequest, resp.status, body)
		resp.errorBody(t)
	}
	require.Equal(t, http.StatusOK, s.do("POST", "/integrations/q/stop", "").status)
	resp = s.do("POST", "/integrations/q/replay", "")
	assert.Equal(t, http.StatusConflict, resp.status)
	assert.Equal(t, "integration_not_running", resp.errorBody(t).ErrorCode)
}

// On an in-memory bus that no longer holds the start of the range, the
// answer says where the replay starts.
func TestAPI_replay_says_when_the_journal_no_longer_holds_the_range(t *testing.T) {
	s := newServer(t, api.Options{}, func(c *bus.Config) { c.MemoryBytes = 32 << 10 })
	sink := s.tb.NewSinkIntegration(bus.Integration{ID: "q", Concurrency: 1})
	start := s.tb.Clock.Now()
	payload := []byte(`{"pad":"` + strings.Repeat("x", 1000) + `"}`)
	for i := range 100 {
		s.tb.MustPublish(bus.Event{Name: "order.created", Payload: payload})
		sink.WaitFor(t, i+1)
		s.tb.Clock.Advance(time.Second)
	}
	resp := s.do("POST", "/integrations/q/replay", fmt.Sprintf(`{"from":%q,"dry_run":true}`, start.Format(time.RFC3339)))
	require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
	var job api.ReplayResponse
	require.NoError(t, json.Unmarshal(resp.body, &job))
	assert.True(t, job.Partial)
	require.NotNil(t, job.From)
	assert.True(t, job.From.After(start), "starts at the oldest event held: %s", job.From)
	assert.Less(t, job.Matched, 100)
	assert.Positive(t, job.Matched)
}

func TestAPI_caller_hook_answers_401_and_403(t *testing.T) {
	s := newServer(t, api.Options{Caller: func(r *http.Request) (access.Caller, error) {
		switch r.Header.Get("Authorization") {
		case "Bearer admin":
			return access.Admin(), nil
		case "Bearer forgetful":
			return access.Caller{}, nil // the hook's mistake: nobody
		case "Bearer odd":
			return access.Tenant("a/b"), nil // no tenant's name
		case "":
			return access.Caller{}, fmt.Errorf("no token: %w", access.ErrUnauthenticated)
		}
		return access.Caller{}, errors.New("token lacks the integrations scope")
	}})
	resp := s.do("GET", "/integrations", "")
	require.Equal(t, http.StatusUnauthorized, resp.status)
	assert.Equal(t, "unauthenticated", resp.errorBody(t).ErrorCode)
	resp = s.do("DELETE", "/integrations/x", "", "Authorization", "Bearer reader")
	require.Equal(t, http.StatusForbidden, resp.status)
	assert.Equal(t, "forbidden", resp.errorBody(t).ErrorCode)
	assert.NotContains(t, string(resp.body), "scope")
	for _, token := range []string{"forgetful", "odd"} {
		resp = s.do("GET", "/integrations", "", "Authorization", "Bearer "+token)
		require.Equal(t, http.StatusForbidden, resp.status, token)
		assert.Equal(t, "forbidden", resp.errorBody(t).ErrorCode)
	}
	assert.Equal(t, http.StatusOK, s.do("GET", "/integrations", "", "Authorization", "Bearer admin").status)
}

func TestAPI_body_over_the_limit_answers_413(t *testing.T) {
	s := newServer(t, api.Options{MaxBodyBytes: 64})
	resp := s.do("POST", "/integrations", `{"integration_type":"bustest","description":"`+strings.Repeat("x", 100)+`"}`)
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.status)
	assert.Equal(t, "request_too_large", resp.errorBody(t).ErrorCode)
}

func TestAPI_unknown_paths_and_methods_answer_json_errors(t *testing.T) {
	s := newServer(t, api.Options{})
	resp := s.do("GET", "/widgets", "")
	require.Equal(t, http.StatusNotFound, resp.status)
	assert.Equal(t, "not_found", resp.errorBody(t).ErrorCode)

	resp = s.do("PUT", "/integrations", "{}")
	require.Equal(t, http.StatusMethodNotAllowed, resp.status)
	assert.Equal(t, "method_not_allowed", resp.errorBody(t).ErrorCode)
	assert.Contains(t, resp.header.Get("Allow"), "POST")
}

// The application decides whether integrations may reach private networks
// (bus.Config.AllowPrivateNetworks): without its permission, a request for
// allow_private_networks is refused with 400 naming the field as the caller
// wrote it, at creation and on update.
func TestAPI_allow_private_networks_needs_the_applications_permission(t *testing.T) {
	s := newServer(t, api.Options{}, func(c *bus.Config) { c.AllowPrivateNetworks = false })
	const cfg = `"configuration":{"url":"http://127.0.0.1:9/hooks","allow_private_networks":true}`
	for _, tc := range []struct{ body, field string }{
		{`{"id":"a","integration_type":"webhook",` + cfg + `}`, "configuration.allow_private_networks"},
		{`{"data":{"id":"a","type":"integration","integration_type":"webhook",` + cfg + `}}`, "data.configuration.allow_private_networks"},
		{`{"id":"a","integration_type":"permanent","callback_url":"http://127.0.0.1:9/hooks",
			"callback_parameters":{"allow_private_networks":true}}`, "callback_parameters.allow_private_networks"},
	} {
		resp := s.do("POST", "/integrations", tc.body)
		require.Equal(t, http.StatusBadRequest, resp.status, "%s: %s", tc.body, resp.body)
		e := resp.errorBody(t)
		assert.Equal(t, "validation_failed", e.ErrorCode)
		assert.Equal(t, []string{tc.field}, fieldsOf(e), tc.body)
		assert.Contains(t, e.Errors[0].Message, "not allowed", tc.body)
	}
	assert.Equal(t, http.StatusNotFound, s.do("GET", "/integrations/a", "").status)

	require.Equal(t, http.StatusCreated, s.do("POST", "/integrations",
		`{"id":"pub","integration_type":"webhook","configuration":{"url":"https://erp.example.com/hooks"}}`).status)
	resp := s.do("PATCH", "/integrations/pub", `{"data":{"configuration":{"allow_private_networks":true}}}`)
	require.Equal(t, http.StatusBadRequest, resp.status, "%s", resp.body)
	assert.Equal(t, []string{"data.configuration.allow_private_networks"}, fieldsOf(resp.errorBody(t)))
	got := s.do("GET", "/integrations/pub", "").object(t)
	assert.NotContains(t, got["configuration"], "allow_private_networks")
	assert.Equal(t, "running", got["status"])
}

func TestNew_refuses_invalid_options_naming_each(t *testing.T) {
	tb := bustest.New(t)
	_, err := api.New(tb.Bus, api.Options{Format: "xml", MaxBodyBytes: -1, BaseURL: "shop.example.com/api"})
	require.Error(t, err)
	var fields []string
	for _, fe := range field.Errors(err) {
		var target *field.Error
		require.True(t, errors.As(fe, &target))
		fields = append(fields, target.Field)
	}
	assert.ElementsMatch(t, []string{"Caller", "Format", "MaxBodyBytes", "BaseURL"}, fields)
	assert.Contains(t, err.Error(), `"elastic_path"`, "the rule lists the formats")

	anyone := access.Anyone(access.Admin())
	_, err = api.New(tb.Bus, api.Options{Caller: anyone, BaseURL: "https://shop.example.com/api?x=1"})
	assert.Error(t, err)
	_, err = api.New(nil, api.Options{Caller: anyone})
	assert.Error(t, err)
	for _, f := range []formats.Format{"", formats.Sinkbus, formats.ElasticPath, formats.NewStore} {
		_, err := api.New(tb.Bus, api.Options{Caller: anyone, Format: f, BaseURL: "https://shop.example.com/api/"})
		assert.NoError(t, err, f)
	}
}
