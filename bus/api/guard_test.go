package api_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/api"
)

// Destinations the network guard refuses and paths outside the path root
// are the caller's errors: 400 naming the field as the body wrote it, for
// every type that dials or names a path, in each shape; nothing is created.
func TestAPI_internal_addresses_and_outside_paths_are_refused_naming_the_field(t *testing.T) {
	s := newServer(t, api.Options{}, durable(t), func(c *bus.Config) { c.AllowPrivateNetworks = false })
	for _, tc := range []struct{ body, field string }{
		{`{"data":{"type":"integration","integration_type":"webhook","configuration":{"url":"http://10.0.0.1/hooks"}}}`,
			"data.configuration.url"},
		{`{"data":{"type":"integration","integration_type":"webhook","configuration":{"url":"http://169.254.169.254/latest/meta-data/"}}}`,
			"data.configuration.url"},
		{`{"integration_type":"permanent","callback_url":"http://[::1]:8080/hooks"}`, "callback_url"},
		{`{"integration_type":"stomp","configuration":{"addresses":["stomp://127.0.0.1:61613"],"destination":"/queue/q"}}`,
			"configuration.addresses[0]"},
		{`{"integration_type":"aws_sqs","configuration":{"url":"https://sqs.eu-west-1.amazonaws.com/1/q","endpoint":"http://127.0.0.1:9324"}}`,
			"configuration.endpoint"},
		{`{"integration_type":"permanent","s3_parameters":{"bucket":"exports","endpoint":"http://localhost:7070"}}`,
			"s3_parameters.endpoint"},
		{`{"integration_type":"file","configuration":{"dir":"/proc/self/evil"}}`, "configuration.dir"},
		{`{"integration_type":"file","configuration":{"dir":"../../../tmp/evil"}}`, "configuration.dir"},
		{`{"integration_type":"permanent","s3_parameters":{"bucket":"exports","spool_dir":"/var/tmp/spool"}}`,
			"s3_parameters.spool_dir"},
		{`{"integration_type":"stomp","configuration":{"addresses":["stomp+ssl://mq.example.com"],"destination":"/queue/q",
			"tls":{"ca_file":"/dev/zero"}}}`, "configuration.tls.ca_file"},
	} {
		resp := s.do("POST", "/integrations", tc.body)
		require.Equal(t, http.StatusBadRequest, resp.status, "%s: %s", tc.body, resp.body)
		e := resp.errorBody(t)
		assert.Equal(t, "validation_failed", e.ErrorCode)
		assert.Equal(t, []string{tc.field}, fieldsOf(e), tc.body)
	}
	// Only Go code may unconfine paths: JSON cannot say so.
	resp := s.do("POST", "/integrations", `{"integration_type":"file","configuration":{"dir":"/tmp/evil"},"unconfined_paths":true}`)
	require.Equal(t, http.StatusBadRequest, resp.status, "%s", resp.body)
	assert.ElementsMatch(t, []string{"unconfined_paths", "configuration.dir"}, fieldsOf(resp.errorBody(t)))
	list := s.do("GET", "/integrations", "").object(t)
	assert.Empty(t, list["integrations"])
}
