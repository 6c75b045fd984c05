// Package awsclient builds the HTTP client of the sinks' AWS service
// clients (sqs, s3), so that both reach their endpoints through the network
// guard in the same way.
package awsclient

import (
	"fmt"
	"net"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"

	"github.com/sinkbus/sinkbus/netguard"
)

// HTTPClient returns the HTTP client of a sink's AWS service client, made
// from cfg's (the one the SDK's configuration loading built, with a custom
// CA bundle if the environment names one): it dials through the network
// guard unless allowPrivate, and then without a proxy; tune, when not nil,
// adjusts its transport further.
//
// cfg.HTTPClient itself stays unguarded: the default credential chain uses
// it to reach the instance metadata endpoint (169.254.169.254) or the
// container credentials endpoint, on the application's behalf, with
// addresses no integration chooses.
func HTTPClient(cfg aws.Config, allowPrivate bool, tune func(*http.Transport)) (aws.HTTPClient, error) {
	var b *awshttp.BuildableClient
	switch c := cfg.HTTPClient.(type) {
	case nil:
		b = awshttp.NewBuildableClient()
	case *awshttp.BuildableClient:
		b = c
	default:
		return nil, fmt.Errorf("sinkbus: the AWS configuration's HTTP client %T cannot be guarded", c)
	}
	b = b.WithDialerOptions(func(d *net.Dialer) { netguard.Guard(d, allowPrivate) })
	b = b.WithTransportOptions(func(t *http.Transport) {
		if !allowPrivate {
			t.Proxy = nil // a proxy would connect past the guard
		}
		if tune != nil {
			tune(t)
		}
	})
	return b.Freeze(), nil
}
