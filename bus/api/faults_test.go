package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus/api"
)

// Each of these bodies is the caller's mistake: 400 naming the field with
// a rule that says what is wrong, and nothing created.
func TestAPI_small_validation_faults_name_the_field(t *testing.T) {
	s := newServer(t, api.Options{})
	for _, tc := range []struct{ body, field, rule string }{
		{`{"integration_type":"bustest","delivery":{"timeout":"1000h"}}`, "delivery.timeout", "must be at most 5m0s"},
		{`{"integration_type":"bustest","delivery":{"timeout":1e308}}`, "delivery.timeout", "out of range"},
		{`{"integration_type":"bustest","delivery":{"retry":{"max_elapsed_time":-1e300}}}`, "delivery.retry.max_elapsed_time", "out of range"},
		{`{"integration_type":"webhook","configuration":{"url":"https://erp.example.com","timeout":1e308}}`, "configuration.timeout", "out of range"},
		{`{"integration_type":"bustest","concurrency":2.5}`, "concurrency", "must be an integer"},
		{`{"integration_type":"bustest","concurrency":"8"}`, "concurrency", "must be an integer, not a string"},
		{`{"integration_type":"bustest","name":"a\u0000b"}`, "name", "must not contain control characters"},
		{`{"integration_type":"bustest","description":"a\u0000b"}`, "description", "must not contain control characters"},
	} {
		resp := s.do("POST", "/integrations", tc.body)
		require.Equal(t, http.StatusBadRequest, resp.status, "%s: %s", tc.body, resp.body)
		e := resp.errorBody(t)
		require.Equal(t, []string{tc.field}, fieldsOf(e), tc.body)
		assert.Contains(t, e.Errors[0].Message, tc.rule, tc.body)
	}
	assert.JSONEq(t, `{"integrations":[]}`, string(s.do("GET", "/integrations", "").body))
}

// A replay request of the wrong types names each field.
func TestAPI_replay_type_errors_name_the_field(t *testing.T) {
	s := newServer(t, api.Options{})
	require.Equal(t, http.StatusCreated, s.do("POST", "/integrations", `{"id":"erp","integration_type":"bustest"}`).status)
	for body, field := range map[string]string{
		`{"from":123}`:       "from",
		`{"to":"yesterday"}`: "to",
		`{"dry_run":"yes"}`:  "dry_run",
		`{"from":{"a":1}}`:   "from",
		`{"colour":"red"}`:   "colour",
	} {
		resp := s.do("POST", "/integrations/erp/replay", body)
		require.Equal(t, http.StatusBadRequest, resp.status, "%s: %s", body, resp.body)
		assert.Equal(t, []string{field}, fieldsOf(resp.errorBody(t)), body)
	}
}

// An id from the path is not echoed whole: a long one is cut in the answer.
func TestAPI_long_ids_are_not_echoed_whole(t *testing.T) {
	s := newServer(t, api.Options{})
	long := strings.Repeat("a", 100<<10)
	for _, req := range []struct{ method, path string }{
		{"GET", "/integrations/" + long}, {"GET", "/integrations/" + long + "/log"},
		{"POST", "/integrations/" + long + "/start"}, {"GET", "/integrations/" + long + "/nope"},
		{"GET", "/nope/" + long},
	} {
		resp := s.do(req.method, req.path, "")
		assert.Equal(t, http.StatusNotFound, resp.status, "%s", req.method)
		assert.Less(t, len(resp.body), 1024, "%s %.40s: %d bytes", req.method, req.path, len(resp.body))
	}
}

// NewStore's temporary integrations cannot be updated (its documentation
// says so): a PATCH that changes one is refused, 409, and changes nothing;
// stopping and starting it is not an update.
func TestAPI_temporary_integrations_cannot_be_updated(t *testing.T) {
	s := newServer(t, api.Options{})
	// Stopped, so that it does not complete its (empty, past) range and
	// change its own status while the test compares.
	resp := s.do("POST", "/integrations", `{"id":"tmp","integration_type":"temporary","callback_url":"https://erp.example.com/h",
		"starts_at":"2019-01-17T12:00:00Z","ends_at":"2019-02-21T23:59:00Z","status":"stopped"}`)
	require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
	before := s.do("GET", "/integrations/tmp", "").object(t)

	resp = s.do("PATCH", "/integrations/tmp", `{"callback_url":"https://other.example.com/h"}`)
	require.Equal(t, http.StatusConflict, resp.status, "%s", resp.body)
	e := resp.errorBody(t)
	assert.Equal(t, "immutable_field", e.ErrorCode)
	assert.Contains(t, e.Message, "temporary")
	assert.Equal(t, before, s.do("GET", "/integrations/tmp", "").object(t))

	resp = s.do("PATCH", "/integrations/tmp", `{"status":"running"}`)
	require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
	assert.Equal(t, "running", resp.object(t)["status"])
}
