package webhook_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/webhook"
)

func FuzzParseSignatureHeader(f *testing.F) {
	for _, s := range []string{
		"v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
		"v1,AAEC v1a,AwQ=",
		"v1, ,v1 v1,,",
		"v1,AAEC\tv2,!!!",
		"",
		"v1,AAE=C",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		sigs, err := webhook.ParseSignatureHeader(header)
		if err != nil {
			assert.Empty(t, sigs)
			return
		}
		require.NotEmpty(t, sigs)
		for _, s := range sigs {
			assert.NotEmpty(t, s.Version)
			assert.NotContains(t, s.Version, ",")
			assert.Contains(t, header, s.Version+","+base64.StdEncoding.EncodeToString(s.Value))
		}
	})
}

func FuzzVerify(f *testing.F) {
	f.Add(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", []byte(`{"test": 2432232314}`), int64(1614265330))
	f.Add("SOME_SECRET_KEY", "e-1", "-1", "v1,", []byte(nil), int64(0))
	f.Add("whsec_", "", "99999999999999999999", "v1,AAAA v1,BBBB", []byte("{}"), int64(-1))
	f.Fuzz(func(t *testing.T, secret, id, timestamp, signature string, body []byte, now int64) {
		h := http.Header{}
		h.Set("webhook-id", id)
		h.Set("webhook-timestamp", timestamp)
		h.Set("webhook-signature", signature)
		_ = webhook.Verify([]string{secret}, h, body, time.Unix(now, 0), 0)

		// What the sender signs, the receiver accepts.
		if id == "" || secret == "" || strings.ContainsAny(id, "\r\n") {
			return
		}
		if _, err := webhook.NewVerifier(secret); err != nil {
			return
		}
		ts := strconv.FormatInt(now, 10)
		h.Set("webhook-timestamp", ts)
		h.Set("webhook-signature", specSignature(t, secret, id, ts, body))
		if h.Get("webhook-id") != id {
			return // not representable as a header value
		}
		assert.NoError(t, webhook.Verify([]string{"whsec_b3RoZXI=", secret}, h, body, time.Unix(now, 0).Add(time.Minute), 0))
	})
}

func FuzzDecodeConfig(f *testing.F) {
	for _, s := range []string{
		`{"url":"https://ilovelamp.now.sh/send-shipped-email","secret_key":"SOME_SECRET_KEY"}`,
		`{"callback_url":"https://erp.example.com/in","api_key":"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"}`,
		`{"url":"https://a.example","signature":"hmac-sha256","signature_header":"X-Sig","secret_key":"whsec_AAAA","timeout":"3s"}`,
		`{"url":"http://u:p@a.example:8080/x?y=1","format":"cloudevents","source":"/s","headers":{"X-A":"1"},"max_connections":3}`,
		`{"timeout":1e300,"headers":{}}`,
		`{"url":"https://a.example","callback_url":"https://b.example"}`,
		`null`, `[]`, `{`,
	} {
		f.Add([]byte(s))
	}
	env := sinks.Env{}
	f.Fuzz(func(t *testing.T, raw []byte) {
		cfg, err := webhook.Type.Decode(raw)
		if err != nil {
			assert.Nil(t, cfg)
			return
		}
		_ = cfg.Masked()
		b, err := json.Marshal(cfg)
		require.NoError(t, err)
		back, err := webhook.Type.Decode(b)
		require.NoError(t, err, "%s", b)
		b2, err := json.Marshal(back)
		require.NoError(t, err)
		assert.JSONEq(t, string(b), string(b2))

		if cfg.Validate() != nil {
			return
		}
		pub, err := cfg.NewPublisher(env)
		require.NoError(t, err, "a valid configuration builds a publisher")
		require.NoError(t, pub.Close())
	})
}

func FuzzParseRetryAfter(f *testing.F) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, s := range []string{
		"120", "0", " 7 ", "-5", "99999999999999999999", "1e3", "soon", "",
		now.Add(90 * time.Second).Format(http.TimeFormat),
		"Sunday, 01-Mar-26 12:01:30 GMT", "Sun Mar  1 12:01:30 2026",
		now.Add(-time.Hour).Format(http.TimeFormat),
		"Fri, 31 Dec 9999 23:59:59 GMT", "Mon, 01 Jan 0001 00:00:00 GMT",
	} {
		f.Add(s, now.Unix())
	}
	f.Fuzz(func(t *testing.T, value string, nowUnix int64) {
		now := time.Unix(nowUnix, 0)
		d := webhook.ParseRetryAfter(value, now)
		assert.GreaterOrEqual(t, d, time.Duration(0))
		assert.LessOrEqual(t, d, webhook.MaxRetryAfter)

		// Delay seconds are taken as they are, up to the cap.
		if secs, err := strconv.ParseUint(strings.TrimSpace(value), 10, 64); err == nil && secs <= 86400 {
			assert.Equal(t, time.Duration(secs)*time.Second, d)
		}
	})
}
