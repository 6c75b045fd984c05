package ingest

import (
	"errors"
	"net/http"

	"github.com/sinkbus/sinkbus/bus/access"
	"github.com/sinkbus/sinkbus/sinks/webhook"
)

// Authenticator decides whether a request may publish: nil accepts it, an
// error refuses it with 401 (the error's text is not shown to the sender).
// body is the raw request body, for signature checks; the request's own
// Body has been read.
type Authenticator func(r *http.Request, body []byte) error

// ErrUnauthenticated is what the built-in authenticators return.
var ErrUnauthenticated = errors.New("sinkbus: ingestion request not authenticated")

// AllowAll accepts every request, as the starter kit does until its
// authentication check is written. Use it only behind something that
// authenticates.
func AllowAll() Authenticator {
	return func(*http.Request, []byte) error { return nil }
}

// Bearer accepts requests whose Authorization header is "Bearer <token>"
// with one of tokens (several during a rotation), compared in constant
// time (access.Bearer). With no token, it accepts nothing.
func Bearer(tokens ...string) Authenticator {
	callers := make(map[string]access.Caller, len(tokens))
	for _, t := range tokens {
		if t != "" {
			callers[t] = access.Admin()
		}
	}
	identify, _ := access.Bearer(callers) // cannot fail: no empty token, no invalid caller
	return func(r *http.Request, _ []byte) error {
		if _, err := identify(r); err != nil {
			return ErrUnauthenticated
		}
		return nil
	}
}

// HMAC accepts requests whose header holds the hex HMAC-SHA256 of the body
// with one of secrets (the single-header scheme of Commerce Layer, and of
// the webhook sink's "hmac-sha256" signature mode). Secrets are raw strings
// or Standard Webhooks "whsec_" secrets.
func HMAC(header string, secrets ...string) (Authenticator, error) {
	if header == "" {
		return nil, errors.New("sinkbus: ingest.HMAC needs a header name")
	}
	v, err := webhook.NewVerifier(secrets...)
	if err != nil {
		return nil, err
	}
	v.SignatureHeader = header
	return Signature(v), nil
}

// StandardWebhooks accepts requests signed as Standard Webhooks sign them
// (webhook-id, webhook-timestamp and webhook-signature headers; the sinkbus
// webhook sink's default), with one of secrets, within the default
// timestamp tolerance of the wall clock.
func StandardWebhooks(secrets ...string) (Authenticator, error) {
	v, err := webhook.NewVerifier(secrets...)
	if err != nil {
		return nil, err
	}
	return Signature(v), nil
}

// Signature accepts requests v verifies: set its Tolerance, Now or
// SignatureHeader first.
func Signature(v *webhook.Verifier) Authenticator {
	return func(r *http.Request, body []byte) error {
		if err := v.Verify(r.Header, body); err != nil {
			return errors.Join(ErrUnauthenticated, err)
		}
		return nil
	}
}
