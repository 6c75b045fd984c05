package awsclient_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/internal/awsclient"
	"github.com/sinkbus/sinkbus/netguard"
)

// The service client's HTTP client is guarded; the configuration's own,
// which the credential chain uses for the instance metadata endpoint, is
// not changed.
func TestHTTPClient_guards_the_service_client_only(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	get := func(c aws.HTTPClient) error {
		req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
		require.NoError(t, err)
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	for _, cfg := range []aws.Config{{}, {HTTPClient: awshttp.NewBuildableClient()}} {
		guarded, err := awsclient.HTTPClient(cfg, false, nil)
		require.NoError(t, err)
		assert.ErrorIs(t, get(guarded), netguard.ErrBlocked)
		if cfg.HTTPClient != nil {
			assert.NoError(t, get(cfg.HTTPClient))
		}
		allowed, err := awsclient.HTTPClient(cfg, true, nil)
		require.NoError(t, err)
		assert.NoError(t, get(allowed))
	}
}

// A guarded client uses no proxy, which would connect past the guard: with
// HTTP_PROXY on loopback, a request to a public address goes direct (and
// times out on this unroutable one) instead of being refused at the proxy.
// In a child process, as net/http reads the proxy environment once.
func TestHTTPClient_guarded_uses_no_proxy(t *testing.T) {
	if os.Getenv("AWSCLIENT_PROXY_CHILD") == "1" {
		guarded, err := awsclient.HTTPClient(aws.Config{}, false, nil)
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://192.0.2.1/", nil)
		require.NoError(t, err)
		_, err = guarded.Do(req)
		require.Error(t, err)
		assert.NotErrorIs(t, err, netguard.ErrBlocked, "the request went to the proxy")
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHTTPClient_guarded_uses_no_proxy$")
	cmd.Env = append(os.Environ(), "AWSCLIENT_PROXY_CHILD=1", "HTTP_PROXY=http://127.0.0.1:1", "http_proxy=http://127.0.0.1:1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
}
