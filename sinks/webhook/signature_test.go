package webhook_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/webhook"
)

// The Standard Webhooks test vector secret.
const (
	secret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	oldSecret = "whsec_dGhlIHByZXZpb3VzIHNpZ25pbmcga2V5IDAxMjM="
)

// specSignature is the Standard Webhooks signature, written from the
// specification alone: HMAC-SHA256 keyed with the base64 part of a whsec_
// secret (or the secret's bytes), over "msg_id.timestamp.body", base64
// standard encoding, prefixed "v1,".
func specSignature(t testing.TB, secret, id, timestamp string, body []byte) string {
	t.Helper()
	key := []byte(secret)
	if rest, ok := strings.CutPrefix(secret, "whsec_"); ok {
		var err error
		key, err = base64.StdEncoding.DecodeString(rest)
		require.NoError(t, err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + timestamp + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func TestSpecSignature_matches_the_standard_webhooks_test_vector(t *testing.T) {
	// From the Standard Webhooks reference libraries' tests.
	got := specSignature(t, secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330",
		[]byte(`{"test": 2432232314}`))
	assert.Equal(t, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", got)
}

func TestWebhookSink_standard_signature(t *testing.T) {
	for _, key := range []string{secret, "SOME_SECRET_KEY"} {
		t.Run(key, func(t *testing.T) {
			rc := newReceiver(t, http.StatusOK)
			p, c := newPublisher(t, webhook.Config{URL: rc.URL, SecretKey: key})

			require.NoError(t, p.Publish("t", event("e-1", "order.created", `{"order_id":"o-1"}`)))

			got := rc.next(t)
			ts := got.Header.Get("webhook-timestamp")
			assert.Equal(t, strconv.FormatInt(c.Now().Unix(), 10), ts)
			assert.Equal(t, specSignature(t, key, "e-1", ts, got.Body), got.Header.Get("webhook-signature"))
			assert.NoError(t, webhook.Verify([]string{key}, got.Header, got.Body, c.Now(), 0))
		})
	}
}

func TestWebhookSink_signature_rotation(t *testing.T) {
	rc := newReceiver(t, http.StatusOK)
	p, c := newPublisher(t, webhook.Config{URL: rc.URL, SecretKey: secret, PreviousSecretKey: oldSecret})

	require.NoError(t, p.Publish("t", event("e-1", "order.created", `{}`)))

	got := rc.next(t)
	ts := got.Header.Get("webhook-timestamp")
	assert.Equal(t,
		specSignature(t, secret, "e-1", ts, got.Body)+" "+specSignature(t, oldSecret, "e-1", ts, got.Body),
		got.Header.Get("webhook-signature"))
	assert.NoError(t, webhook.Verify([]string{secret}, got.Header, got.Body, c.Now(), 0), "new secret")
	assert.NoError(t, webhook.Verify([]string{oldSecret}, got.Header, got.Body, c.Now(), 0), "old secret")
	assert.ErrorIs(t, webhook.Verify([]string{"whsec_b3RoZXI="}, got.Header, got.Body, c.Now(), 0),
		webhook.ErrInvalidSignature)
}

func TestVerify_refuses(t *testing.T) {
	rc := newReceiver(t, http.StatusOK)
	p, c := newPublisher(t, webhook.Config{URL: rc.URL, SecretKey: secret})
	require.NoError(t, p.Publish("t", event("e-1", "order.created", `{"total":10}`)))
	got := rc.next(t)
	now := c.Now()
	without := func(name string) http.Header {
		h := got.Header.Clone()
		h.Del(name)
		return h
	}
	with := func(name, value string) http.Header {
		h := got.Header.Clone()
		h.Set(name, value)
		return h
	}

	tests := []struct {
		name    string
		header  http.Header
		body    []byte
		now     time.Time
		secrets []string
		want    error
	}{
		{"tampered body", got.Header, bytes.Replace(got.Body, []byte("10"), []byte("99"), 1), now, []string{secret}, webhook.ErrInvalidSignature},
		{"other event id", with("webhook-id", "e-2"), got.Body, now, []string{secret}, webhook.ErrInvalidSignature},
		{"replayed later", got.Header, got.Body, now.Add(6 * time.Minute), []string{secret}, webhook.ErrTimestampTooOld},
		{"from the future", got.Header, got.Body, now.Add(-6 * time.Minute), []string{secret}, webhook.ErrTimestampTooNew},
		{"timestamp moved", with("webhook-timestamp", strconv.FormatInt(now.Unix()+1, 10)), got.Body, now, []string{secret}, webhook.ErrInvalidSignature},
		{"timestamp not a number", with("webhook-timestamp", "yesterday"), got.Body, now, []string{secret}, webhook.ErrMissingHeaders},
		{"no id", without("webhook-id"), got.Body, now, []string{secret}, webhook.ErrMissingHeaders},
		{"no timestamp", without("webhook-timestamp"), got.Body, now, []string{secret}, webhook.ErrMissingHeaders},
		{"no signature", without("webhook-signature"), got.Body, now, []string{secret}, webhook.ErrMissingHeaders},
		{"malformed signature", with("webhook-signature", "v1"), got.Body, now, []string{secret}, webhook.ErrInvalidSignature},
		{"unknown version only", with("webhook-signature", "v2,"+strings.TrimPrefix(got.Header.Get("webhook-signature"), "v1,")), got.Body, now, []string{secret}, webhook.ErrInvalidSignature},
		{"wrong secret", got.Header, got.Body, now, []string{"whsec_b3RoZXI="}, webhook.ErrInvalidSignature},
		{"no secret", got.Header, got.Body, now, nil, webhook.ErrInvalidSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.ErrorIs(t, webhook.Verify(tt.secrets, tt.header, tt.body, tt.now, 0), tt.want)
		})
	}

	t.Run("within the tolerance", func(t *testing.T) {
		assert.NoError(t, webhook.Verify([]string{secret}, got.Header, got.Body, now.Add(4*time.Minute), 0))
		assert.ErrorIs(t, webhook.Verify([]string{secret}, got.Header, got.Body, now.Add(4*time.Minute), time.Minute),
			webhook.ErrTimestampTooOld)
	})
	t.Run("one valid signature among others", func(t *testing.T) {
		h := with("webhook-signature", "v1a,bm90IGEgc2lnbmF0dXJl garbage v1,AAAA "+got.Header.Get("webhook-signature"))
		assert.NoError(t, webhook.Verify([]string{secret}, h, got.Body, now, 0))
	})
	t.Run("invalid secret", func(t *testing.T) {
		err := webhook.Verify([]string{"whsec_%%%"}, got.Header, got.Body, now, 0)
		require.Error(t, err)
		assert.NotContains(t, err.Error(), "%%%")
	})
}

func TestWebhookSink_hmac_header(t *testing.T) {
	rc := newReceiver(t, http.StatusOK)
	p, _ := newPublisher(t, webhook.Config{
		URL:             rc.URL,
		Signature:       webhook.SignatureHMACSHA256,
		SignatureHeader: "X-CommerceLayer-Signature",
		SecretKey:       "shared-secret-1",
	})

	require.NoError(t, p.Publish("t", event("e-1", "order.created", `{}`)))

	got := rc.next(t)
	mac := hmac.New(sha256.New, []byte("shared-secret-1"))
	mac.Write(got.Body)
	assert.Equal(t, hex.EncodeToString(mac.Sum(nil)), got.Header.Get("X-CommerceLayer-Signature"))
	assert.Empty(t, got.Header.Values("webhook-signature"))
	assert.Empty(t, got.Header.Values("webhook-timestamp"))
	assert.NoError(t, webhook.VerifyHMAC([]string{"shared-secret-1"}, got.Header.Get("X-CommerceLayer-Signature"), got.Body))
	assert.ErrorIs(t, webhook.VerifyHMAC([]string{"shared-secret-1"}, got.Header.Get("X-CommerceLayer-Signature"), append(got.Body, ' ')),
		webhook.ErrInvalidSignature)
	assert.ErrorIs(t, webhook.VerifyHMAC([]string{"other"}, got.Header.Get("X-CommerceLayer-Signature"), got.Body),
		webhook.ErrInvalidSignature)
	assert.ErrorIs(t, webhook.VerifyHMAC([]string{"shared-secret-1"}, "", got.Body), webhook.ErrMissingHeaders)
}

func TestWebhookSink_hmac_header_rotation_and_default_name(t *testing.T) {
	rc := newReceiver(t, http.StatusOK)
	p, _ := newPublisher(t, webhook.Config{
		URL:               rc.URL,
		Signature:         webhook.SignatureHMACSHA256,
		SecretKey:         secret,
		PreviousSecretKey: "old-raw-secret",
	})

	require.NoError(t, p.Publish("t", event("e-1", "order.created", `{}`)))

	got := rc.next(t)
	sig := got.Header.Get(webhook.DefaultSignatureHeader)
	assert.Len(t, strings.Fields(sig), 2)
	assert.NoError(t, webhook.VerifyHMAC([]string{secret}, sig, got.Body))
	assert.NoError(t, webhook.VerifyHMAC([]string{"old-raw-secret"}, sig, got.Body))
}

func TestWebhookSink_signature_none(t *testing.T) {
	rc := newReceiver(t, http.StatusOK)
	p, _ := newPublisher(t, webhook.Config{URL: rc.URL, Signature: webhook.SignatureNone})

	require.NoError(t, p.Publish("t", event("e-1", "order.created", `{}`)))

	h := rc.next(t).Header
	for _, name := range []string{"webhook-id", "webhook-timestamp", "webhook-signature", webhook.DefaultSignatureHeader} {
		assert.Empty(t, h.Values(name), name)
	}
}

func TestParseSignatureHeader(t *testing.T) {
	sigs, err := webhook.ParseSignatureHeader("v1,AAEC  v1a,AwQ= broken v2,!!!")
	require.NoError(t, err)
	assert.Equal(t, []webhook.Signature{
		{Version: "v1", Value: []byte{0, 1, 2}},
		{Version: "v1a", Value: []byte{3, 4}},
	}, sigs)

	_, err = webhook.ParseSignatureHeader("   ")
	assert.ErrorIs(t, err, webhook.ErrMissingHeaders)
	_, err = webhook.ParseSignatureHeader("v1 ,abc")
	assert.ErrorIs(t, err, webhook.ErrInvalidSignature)
}

func TestVerifier_middleware(t *testing.T) {
	v, err := webhook.NewVerifier(secret, oldSecret)
	require.NoError(t, err)
	v.MaxBodyBytes = 4 << 10
	env, c := testEnv()
	v.Now = c.Now
	passed := make(chan []byte, 1)
	srv := httptest.NewServer(v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		passed <- body
		w.WriteHeader(http.StatusNoContent)
	})))
	defer srv.Close()

	// A signed delivery passes, body intact.
	p, err := webhook.New(webhook.Config{URL: srv.URL, SecretKey: oldSecret, AllowPrivateNetworks: true}, env)
	require.NoError(t, err)
	defer p.Close()
	msg := event("e-1", "order.created", `{"n":1}`)
	require.NoError(t, p.Publish("t", msg))
	assert.JSONEq(t, `{"id":"e-1","name":"order.created","tenant":"acme","published_at":"2026-03-01T11:59:58.123456789Z","payload":{"n":1},"metadata":{"source":"checkout"}}`, string(<-passed))

	// A forged one is refused with 401.
	forged := httptest.NewRequest(http.MethodPost, srv.URL, strings.NewReader(`{}`))
	forged.RequestURI = ""
	forged.Header.Set("webhook-id", "e-1")
	forged.Header.Set("webhook-timestamp", strconv.FormatInt(c.Now().Unix(), 10))
	forged.Header.Set("webhook-signature", "v1,AAAA")
	resp, err := http.DefaultClient.Do(forged)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	// A body past the limit is refused with 413.
	big := event("e-2", "order.created", `"`+strings.Repeat("x", 8<<10)+`"`)
	var se *sinks.StatusError
	require.ErrorAs(t, p.Publish("t", big), &se)
	assert.Equal(t, http.StatusRequestEntityTooLarge, se.StatusCode)
}

func TestVerifier_hmac_mode(t *testing.T) {
	v, err := webhook.NewVerifier("shared-secret-1")
	require.NoError(t, err)
	v.SignatureHeader = "X-CommerceLayer-Signature"
	body := []byte(`{"a":1}`)
	mac := hmac.New(sha256.New, []byte("shared-secret-1"))
	mac.Write(body)
	h := http.Header{}
	h.Set("X-CommerceLayer-Signature", hex.EncodeToString(mac.Sum(nil)))

	assert.NoError(t, v.Verify(h, body))
	assert.ErrorIs(t, v.Verify(h, []byte(`{"a":2}`)), webhook.ErrInvalidSignature)
}

func TestNewVerifier_refuses_bad_secrets(t *testing.T) {
	_, err := webhook.NewVerifier()
	assert.Error(t, err)
	_, err = webhook.NewVerifier("whsec_not base64!")
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "not base64!")
}

// referenceKey reads a secret as the Standard Webhooks reference libraries'
// default constructors do (Go's NewWebhook, the JavaScript and Python
// Webhook classes): standard base64 after an optional "whsec_" prefix,
// whatever the secret. Their raw constructors (Go's NewWebhookRaw) take the
// key bytes as they are.
func referenceKey(secret string) ([]byte, error) {
	return base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
}

// referenceVerify checks a request as the reference libraries do, written
// from the specification: the base64 HMAC-SHA256 of "id.timestamp.body"
// under key must equal one "v1," entry of the space-separated
// webhook-signature.
func referenceVerify(key []byte, h http.Header, body []byte) bool {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(h.Get("webhook-id") + "." + h.Get("webhook-timestamp") + "."))
	mac.Write(body)
	want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, entry := range strings.Split(h.Get("webhook-signature"), " ") {
		version, sig, ok := strings.Cut(entry, ",")
		if ok && version == "v1" && hmac.Equal([]byte(sig), []byte(want)) {
			return true
		}
	}
	return false
}

func TestWebhookSink_signatures_interoperate_with_standard_webhooks_libraries(t *testing.T) {
	const rawBase64Like = "c2lua2J1cyByYXcgc2VjcmV0" // a raw secret that happens to be base64
	tests := []struct {
		name   string
		secret string
		// defaultMode: whether a receiver passing the secret to a reference
		// library's default constructor accepts the request.
		defaultMode bool
	}{
		{"whsec secret", secret, true},
		{"raw secret (Elastic Path's example)", "SOME_SECRET_KEY", false},
		{"raw secret that decodes as base64", rawBase64Like, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := newReceiver(t, http.StatusOK)
			p, c := newPublisher(t, webhook.Config{URL: rc.URL, SecretKey: tt.secret})
			require.NoError(t, p.Publish("t", event("e-1", "order.created", `{"order_id":"o-1"}`)))
			got := rc.next(t)

			key, err := referenceKey(tt.secret)
			assert.Equal(t, tt.defaultMode, err == nil && referenceVerify(key, got.Header, got.Body),
				"a reference library given the secret as it is")
			if !strings.HasPrefix(tt.secret, "whsec_") {
				assert.True(t, referenceVerify([]byte(tt.secret), got.Header, got.Body),
					"a reference library given the raw bytes (NewWebhookRaw)")
			}
			assert.NoError(t, webhook.Verify([]string{tt.secret}, got.Header, got.Body, c.Now(), 0),
				"this package's Verify reads both forms")
		})
	}

	t.Run("rotation from a raw secret to a whsec one", func(t *testing.T) {
		rc := newReceiver(t, http.StatusOK)
		p, _ := newPublisher(t, webhook.Config{URL: rc.URL, SecretKey: secret, PreviousSecretKey: "SOME_SECRET_KEY"})
		require.NoError(t, p.Publish("t", event("e-1", "order.created", `{}`)))
		got := rc.next(t)

		key, err := referenceKey(secret)
		require.NoError(t, err)
		assert.True(t, referenceVerify(key, got.Header, got.Body), "new secret, default mode")
		assert.True(t, referenceVerify([]byte("SOME_SECRET_KEY"), got.Header, got.Body), "old secret, raw mode")
	})
}
