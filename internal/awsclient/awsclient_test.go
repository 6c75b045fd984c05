package awsclient_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

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
