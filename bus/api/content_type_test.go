package api_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus/api"
)

// Every request that changes something must say Content-Type:
// application/json, with a body or without; reads need not.
func TestAPI_mutating_requests_need_a_json_content_type(t *testing.T) {
	s := newServer(t, api.Options{})
	const body = `{"id":"erp","integration_type":"bustest"}`
	for _, ct := range []string{"text/plain", "text/plain; charset=utf-8", "application/x-www-form-urlencoded",
		"multipart/form-data; boundary=b", "application/jsonx", "", ";;;"} {
		resp := s.do("POST", "/integrations", body, "Content-Type", ct)
		require.Equal(t, http.StatusUnsupportedMediaType, resp.status, "%q: %s", ct, resp.body)
		assert.Equal(t, "unsupported_media_type", resp.errorBody(t).ErrorCode)
	}
	assert.Equal(t, http.StatusNotFound, s.do("GET", "/integrations/erp", "", "Content-Type", "").status)

	require.Equal(t, http.StatusCreated, s.do("POST", "/integrations", body, "Content-Type", "application/json; charset=utf-8").status)
	for _, req := range []struct{ method, path string }{
		{"PATCH", "/integrations/erp"}, {"POST", "/integrations/erp/stop"}, {"POST", "/integrations/erp/circuit/reset"},
		{"POST", "/integrations/erp/replay"}, {"DELETE", "/integrations/erp"},
	} {
		resp := s.do(req.method, req.path, "", "Content-Type", "text/plain")
		assert.Equal(t, http.StatusUnsupportedMediaType, resp.status, "%s %s", req.method, req.path)
	}
	got := s.do("GET", "/integrations/erp", "", "Content-Type", "").object(t)
	assert.Equal(t, "running", got["status"], "nothing changed")
	assert.Equal(t, http.StatusNoContent, s.do("DELETE", "/integrations/erp", "").status)
}
