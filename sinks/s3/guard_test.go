package s3_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/netguard"
	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/s3"
)

// Uploads dial through the network guard: a store on an internal address
// gets no request, the failure is permanent and the file stays in the
// spool; allow_private_networks lets the upload through.
func TestS3Sink_network_guard_refuses_internal_endpoints(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer srv.Close()
	cfg := s3.Config{AccessKeyID: "AKID", SecretAccessKey: "secret", Bucket: "exports", Endpoint: srv.URL, PathStyle: true}

	h := newSink(t, cfg)
	require.NoError(t, h.sink.Publish("t", event("e1", "acme")))
	h.rotate(t, 1)
	f := h.waitFailed(t)
	assert.ErrorIs(t, f.err, netguard.ErrBlocked)
	class, _ := sinks.Classify(f.err)
	assert.Equal(t, sinks.ClassPermanent, class, "%v", f.err)
	assert.Len(t, spooled(t, h.sink.Spool()), 1)
	assert.Zero(t, hits.Load(), "a request reached the internal endpoint")

	cfg.AllowPrivateNetworks = true
	allowed := newSink(t, cfg)
	require.NoError(t, allowed.sink.Publish("t", event("e2", "acme")))
	allowed.rotate(t, 1)
	allowed.waitUploaded(t)
	assert.NotZero(t, hits.Load())
}
