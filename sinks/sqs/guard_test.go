package sqs_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/netguard"
	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/sqs"
)

// The SDK's HTTP client dials through the network guard: signed requests
// never reach an endpoint on an internal address, by the endpoint override
// or by the queue URL of an SQS-compatible server, and the failure is
// permanent. allow_private_networks lets them through.
func TestSQSSink_network_guard_refuses_internal_endpoints(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer srv.Close()
	local := srv.URL + "/000000000000/orders"
	for name, c := range map[string]sqs.Config{
		"endpoint":  {URL: "https://sqs.eu-west-1.amazonaws.com/000000000000/orders", Endpoint: srv.URL},
		"queue URL": {URL: local, Region: "us-east-1"},
		"localhost": {URL: local, Region: "us-east-1", Endpoint: strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)},
	} {
		t.Run(name, func(t *testing.T) {
			c.AccessKeyID, c.SecretAccessKey = "AKIAEXAMPLE", "secret"
			p := newSink(t, c, 1)

			err := p.Publish("t", event("order.created", "acme", `{}`))

			require.ErrorIs(t, err, netguard.ErrBlocked)
			class, _ := sinks.Classify(err)
			assert.Equal(t, sinks.ClassPermanent, class, "%v", err)
			assert.Zero(t, hits.Load(), "a request reached the internal endpoint")
		})
	}

	allowed := newSink(t, sqs.Config{URL: local, Region: "us-east-1", AccessKeyID: "AKIAEXAMPLE",
		SecretAccessKey: "secret", AllowPrivateNetworks: true}, 1)
	err := allowed.Publish("t", event("order.created", "acme", `{}`))
	assert.NotErrorIs(t, err, netguard.ErrBlocked)
	assert.NotZero(t, hits.Load())
}
