package api_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus/api"
)

// The API's reads show the settings in force and which are defaults: an
// aws_sqs integration on a FIFO queue orders by tenant though its own
// order_key is empty.
func TestAPI_reads_show_the_effective_settings(t *testing.T) {
	s := newServer(t, api.Options{})
	r := s.do("POST", "/integrations", `{"id":"fifo","integration_type":"aws_sqs","enabled":false,
		"configuration":{"url":"https://sqs.us-east-1.amazonaws.com/123456789012/orders.fifo"}}`)
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)

	got := s.do("GET", "/integrations/fifo", "").object(t)
	assert.NotContains(t, got, "order_key", "what was set stays unset")
	assert.Equal(t, map[string]any{"order_key": "tenant", "concurrency": float64(8), "timeout": "30s",
		"defaults": []any{"order_key", "concurrency", "timeout"}}, got["effective"])

	r = s.do("PATCH", "/integrations/fifo", `{"order_key":"name","concurrency":2}`)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	assert.Equal(t, map[string]any{"order_key": "name", "concurrency": float64(2), "timeout": "30s",
		"defaults": []any{"timeout"}}, r.object(t)["effective"])
}
