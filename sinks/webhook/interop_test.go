package webhook_test

import (
	"net/http"
	"testing"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/internal/clock"
	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/webhook"
)

// A receiver using the Standard Webhooks reference library accepts what the
// sink sends: with a whsec_ secret through its default constructor, with any
// other secret through its raw-key one, and with either key while a secret
// is being rotated. The sink runs on the real clock, because the library
// checks the timestamp against it.
func TestWebhookSink_requests_verify_with_the_standard_webhooks_library(t *testing.T) {
	const other = "SOME_SECRET_KEY" // Elastic Path's example secret
	whsec, err := standardwebhooks.NewWebhook(secret)
	require.NoError(t, err)
	raw, err := standardwebhooks.NewWebhookRaw([]byte(other))
	require.NoError(t, err)

	for _, tc := range []struct {
		name            string
		current, before string
		verifiers       []*standardwebhooks.Webhook
	}{
		{"whsec secret", secret, "", []*standardwebhooks.Webhook{whsec}},
		{"raw secret", other, "", []*standardwebhooks.Webhook{raw}},
		{"rotation", other, secret, []*standardwebhooks.Webhook{raw, whsec}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := newReceiver(t, http.StatusNoContent)
			p, err := webhook.New(webhook.Config{
				URL: rc.URL, SecretKey: tc.current, PreviousSecretKey: tc.before, AllowPrivateNetworks: true,
			}, sinks.Env{IntegrationID: "erp-1", Clock: clock.Real{}})
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, p.Close()) })

			require.NoError(t, p.Publish("orders", event("01J00000000000000000000007", "order.fulfilled", `{"order_id":"o-7"}`)))
			got := rc.next(t)
			for _, v := range tc.verifiers {
				assert.NoError(t, v.Verify(got.Body, got.Header))
			}

			tampered := append([]byte(nil), got.Body...)
			tampered[len(tampered)-2] ^= 1
			for _, v := range tc.verifiers {
				assert.Error(t, v.Verify(tampered, got.Header), "a changed body must not verify")
			}
		})
	}

	t.Run("a wrong key is refused", func(t *testing.T) {
		rc := newReceiver(t, http.StatusNoContent)
		p, _ := newPublisher(t, webhook.Config{URL: rc.URL, SecretKey: other})
		require.NoError(t, p.Publish("orders", event("01J00000000000000000000008", "order.created", `{}`)))
		got := rc.next(t)
		assert.Error(t, whsec.VerifyIgnoringTimestamp(got.Body, got.Header))
		assert.NoError(t, raw.VerifyIgnoringTimestamp(got.Body, got.Header))
	})
}
