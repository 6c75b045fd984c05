package webhook_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/field"
	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/webhook"
)

func decodeConfig(t *testing.T, raw string) webhook.Config {
	t.Helper()
	cfg, err := sinks.NewRegistry(webhook.Type).Decode("webhook", json.RawMessage(raw))
	require.NoError(t, err)
	require.IsType(t, webhook.Config{}, cfg)
	return cfg.(webhook.Config)
}

// fieldErrors returns "field: rule" for each problem of err.
func fieldErrors(err error) []string {
	var out []string
	for _, e := range field.Errors(err) {
		out = append(out, e.Error())
	}
	return out
}

func TestConfig_elastic_path_seed(t *testing.T) {
	cfg := decodeConfig(t, `{
		"url": "https://ilovelamp.now.sh/send-shipped-email",
		"secret_key": "SOME_SECRET_KEY"
	}`)

	assert.Equal(t, webhook.Config{URL: "https://ilovelamp.now.sh/send-shipped-email", SecretKey: "SOME_SECRET_KEY"}, cfg)
	assert.Equal(t, "webhook", cfg.Type())
	require.NoError(t, cfg.Validate())
	assert.Equal(t, 30*time.Second, cfg.AttemptTimeout())
	masked, err := json.Marshal(cfg.Masked())
	require.NoError(t, err)
	assert.JSONEq(t, `{"url":"https://ilovelamp.now.sh/send-shipped-email","secret_key":"****_KEY"}`, string(masked))
}

func TestConfig_newstore_callback_url_and_api_key(t *testing.T) {
	cfg := decodeConfig(t, `{
		"callback_url": "https://erp.example.com/newstore",
		"api_key": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
	}`)

	assert.Equal(t, "https://erp.example.com/newstore", cfg.URL)
	require.NoError(t, cfg.Validate())
	assert.Equal(t, "****VCJ9", cfg.Masked().(webhook.Config).APIKey)

	same := decodeConfig(t, `{"url":"https://a.example","callback_url":"https://a.example"}`)
	assert.Equal(t, "https://a.example", same.URL)

	_, err := webhook.Type.Decode(json.RawMessage(`{"url":"https://a.example","callback_url":"https://b.example"}`))
	assert.Equal(t, []string{"callback_url: conflicts with url; set one of them"}, fieldErrors(err))
}

func TestConfig_commerce_layer_style(t *testing.T) {
	cfg := decodeConfig(t, `{
		"url": "https://prices.example.com/external",
		"secret_key": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
		"signature": "hmac-sha256",
		"signature_header": "X-CommerceLayer-Signature",
		"timeout": "3s"
	}`)

	require.NoError(t, cfg.Validate())
	assert.Equal(t, 3*time.Second, cfg.AttemptTimeout())
	assert.Equal(t, 3*time.Second, decodeConfig(t, `{"url":"https://a.example","timeout":3}`).AttemptTimeout())
}

func TestConfig_decode_errors(t *testing.T) {
	tests := []struct {
		raw  string
		want []string
	}{
		{`{"url":"https://a.example","colour":"red"}`, []string{"colour: unknown field"}},
		{`{"url":5}`, []string{"url: must be a string, not a number"}},
		{`{"callback_url":5}`, []string{"callback_url: must be a string"}},
		{`{"headers":{"X-A":1}}`, []string{"headers: must be a string, not a number"}},
		{`{"timeout":"soon"}`, nil},
		{`[]`, []string{"must be an object, not an array"}},
		{`{"url":`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			_, err := webhook.Type.Decode(json.RawMessage(tt.raw))
			require.Error(t, err)
			var fe *field.Error
			require.ErrorAs(t, err, &fe)
			if tt.want != nil {
				assert.Equal(t, tt.want, fieldErrors(err))
			}
		})
	}
}

func TestConfig_validate(t *testing.T) {
	ok := webhook.Config{URL: "https://hooks.example.com/in"}
	with := func(f func(*webhook.Config)) webhook.Config {
		c := ok
		f(&c)
		return c
	}
	tests := []struct {
		name string
		cfg  webhook.Config
		want []string
	}{
		{"minimal", ok, nil},
		{"everything", with(func(c *webhook.Config) {
			c.SecretKey = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
			c.PreviousSecretKey = "old secret"
			c.APIKey = "key"
			c.Headers = map[string]string{"X-Tenant": "acme", "User-Agent": "erp/1"}
			c.Timeout = sinks.Duration(3 * time.Second)
			c.Format = webhook.FormatCloudEvents
			c.Source = "/shop/eu"
			c.MaxConnections = 16
		}), nil},
		{"no url", webhook.Config{}, []string{"url: is required"}},
		{"ftp", with(func(c *webhook.Config) { c.URL = "ftp://example.com/x" }), []string{"url: must be https or http"}},
		{"relative", with(func(c *webhook.Config) { c.URL = "/hooks" }), []string{"url: must be https or http"}},
		{"no host", with(func(c *webhook.Config) { c.URL = "https:///x" }), []string{"url: must name a host"}},
		{"bad port", with(func(c *webhook.Config) { c.URL = "https://a.example:99999/" }), []string{"url: has an invalid port"}},
		{"unparsable", with(func(c *webhook.Config) { c.URL = "https://a b\x7f/" }), []string{"url: is not a valid URL"}},
		{"bad whsec", with(func(c *webhook.Config) { c.SecretKey = "whsec_not*base64" }), []string{"secret_key: whsec_ secret is not valid base64"}},
		{"empty whsec", with(func(c *webhook.Config) { c.SecretKey = "whsec_" }), []string{"secret_key: whsec_ secret is not valid base64"}},
		{"previous alone", with(func(c *webhook.Config) { c.PreviousSecretKey = "old" }), []string{"previous_secret_key: requires secret_key"}},
		{"bad previous", with(func(c *webhook.Config) {
			c.SecretKey = "new"
			c.PreviousSecretKey = "whsec_???"
		}), []string{"previous_secret_key: whsec_ secret is not valid base64"}},
		{"api key with newline", with(func(c *webhook.Config) { c.APIKey = "k\nX-Evil: 1" }), []string{"api_key: must not contain control characters"}},
		{"api key and url credentials", with(func(c *webhook.Config) {
			c.URL = "https://u:p@a.example/"
			c.APIKey = "k"
		}), []string{"api_key: cannot be combined with credentials in url"}},
		{"negative timeout", with(func(c *webhook.Config) { c.Timeout = -1 }), []string{"timeout: must not be negative"}},
		{"tiny timeout", with(func(c *webhook.Config) { c.Timeout = sinks.Duration(time.Microsecond) }), []string{"timeout: must be at least 1ms"}},
		{"longest timeout", with(func(c *webhook.Config) { c.Timeout = sinks.Duration(webhook.MaxTimeout) }), nil},
		{"huge timeout", with(func(c *webhook.Config) { c.Timeout = sinks.Duration(webhook.MaxTimeout + time.Second) }), []string{"timeout: must be at most 5m0s"}},
		{"signature none with secrets", with(func(c *webhook.Config) {
			c.Signature, c.SecretKey, c.PreviousSecretKey = webhook.SignatureNone, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "old secret value"
		}), []string{"secret_key: must be empty when signature is none", "previous_secret_key: must be empty when signature is none"}},
		{"signature none without secret", with(func(c *webhook.Config) { c.Signature = webhook.SignatureNone }), nil},
		{"masked query value sent back edited", with(func(c *webhook.Config) { c.URL = "https://hooks.example.com/v2?token=****1234&tenant=acme" }),
			[]string{`url: query value of "token" is masked (****); send the real value`}},
		{"escaped masked query value", with(func(c *webhook.Config) { c.URL = "https://hooks.example.com/in?t=%2A%2A%2A%2A" }),
			[]string{`url: query value of "t" is masked (****); send the real value`}},
		{"stars inside a query value", with(func(c *webhook.Config) { c.URL = "https://hooks.example.com/in?q=a****" }), nil},
		{"unknown signature", with(func(c *webhook.Config) { c.Signature = "md5" }), []string{"signature: must be one of standard, hmac-sha256, none"}},
		{"hmac without secret", with(func(c *webhook.Config) { c.Signature = webhook.SignatureHMACSHA256 }), []string{"secret_key: is required when signature is hmac-sha256"}},
		{"signature header without hmac", with(func(c *webhook.Config) { c.SignatureHeader = "X-Sig" }), []string{"signature_header: is used only when signature is hmac-sha256"}},
		{"signature header invalid", with(func(c *webhook.Config) {
			c.Signature, c.SecretKey, c.SignatureHeader = webhook.SignatureHMACSHA256, "s", "X Sig"
		}), []string{"signature_header: must be a valid header name"}},
		{"signature header owned", with(func(c *webhook.Config) {
			c.Signature, c.SecretKey, c.SignatureHeader = webhook.SignatureHMACSHA256, "s", "webhook-signature"
		}), []string{"signature_header: is a header the sink sets itself"}},
		{"unknown format", with(func(c *webhook.Config) { c.Format = "xml" }), []string{"format: must be envelope or cloudevents"}},
		{"source without cloudevents", with(func(c *webhook.Config) { c.Source = "/shop" }), []string{"source: is used only when format is cloudevents"}},
		{"bad source", with(func(c *webhook.Config) {
			c.Format, c.Source = webhook.FormatCloudEvents, "%zz"
		}), []string{"source: must be a URI reference"}},
		{"negative max connections", with(func(c *webhook.Config) { c.MaxConnections = -1 }), []string{"max_connections: must not be negative"}},
		{"owned headers", with(func(c *webhook.Config) {
			c.APIKey = "k"
			c.Headers = map[string]string{
				"content-type":        "text/plain",
				"Webhook-Id":          "x",
				"X-Sinkbus-Topic":     "x",
				"Authorization":       "Basic eA==",
				"X-Good":              "fine",
				"Bad Name":            "x",
				"X-Injected":          "a\r\nX-Evil: 1",
				"x-good":              "twice",
				"X-Sinkbus-Signature": "x",
			}
		}), []string{
			"headers.Authorization: is a header the sink sets itself",
			`headers: "Bad Name" is not a valid header name`,
			"headers.Webhook-Id: is a header the sink sets itself",
			"headers.X-Injected: value must not contain control characters",
			"headers.X-Sinkbus-Signature: is a header the sink sets itself",
			"headers.X-Sinkbus-Topic: is a header the sink sets itself",
			"headers.content-type: is a header the sink sets itself",
			"headers.x-good: is given twice",
		}},
		{"authorization allowed without api key", with(func(c *webhook.Config) {
			c.Headers = map[string]string{"Authorization": "Token abc"}
		}), nil},
		{"all at once", webhook.Config{Signature: "x", Format: "y", Timeout: -1}, []string{
			"url: is required", "timeout: must not be negative",
			"signature: must be one of standard, hmac-sha256, none", "format: must be envelope or cloudevents",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			assert.Equal(t, tt.want, fieldErrors(err))
			for _, secret := range []string{tt.cfg.SecretKey, tt.cfg.PreviousSecretKey, tt.cfg.APIKey} {
				if len(secret) > 6 {
					assert.NotContains(t, err.Error(), secret)
				}
			}
		})
	}
}

func TestConfig_masked(t *testing.T) {
	cfg := webhook.Config{
		URL:               "https://bridge:pa55w0rd-long-enough@erp.example.com/in",
		SecretKey:         "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
		PreviousSecretKey: "SOME_SECRET_KEY",
		APIKey:            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9",
		Headers:           map[string]string{"X-Api-Key": "abcdefghijklmnop"},
	}

	m := cfg.Masked().(webhook.Config)

	assert.Equal(t, "https://bridge:xxxxx@erp.example.com/in", m.URL)
	assert.Equal(t, "****LaSw", m.SecretKey)
	assert.Equal(t, "****_KEY", m.PreviousSecretKey)
	assert.Equal(t, "****VCJ9", m.APIKey)
	assert.Equal(t, map[string]string{"X-Api-Key": "****mnop"}, m.Headers)
	assert.Equal(t, "abcdefghijklmnop", cfg.Headers["X-Api-Key"], "the original is untouched")
	for _, s := range []string{"MfKQ9r8GKYqrTwjUPD8", "pa55w0rd", "eyJhbGci", "abcdefgh"} {
		b, err := json.Marshal(m)
		require.NoError(t, err)
		assert.NotContains(t, string(b), s)
	}
}

func TestConfig_json_round_trip(t *testing.T) {
	cfg := webhook.Config{
		URL:                  "https://a.example/in",
		SecretKey:            "s",
		Headers:              map[string]string{"X-A": "1"},
		Timeout:              sinks.Duration(3 * time.Second),
		Signature:            webhook.SignatureHMACSHA256,
		SignatureHeader:      "X-Sig",
		AllowPrivateNetworks: true,
		MaxConnections:       4,
	}
	b, err := json.Marshal(cfg)
	require.NoError(t, err)
	assert.JSONEq(t, `{"url":"https://a.example/in","secret_key":"s","headers":{"X-A":"1"},"timeout":"3s",
		"signature":"hmac-sha256","signature_header":"X-Sig","allow_private_networks":true,"max_connections":4}`, string(b))

	var back webhook.Config
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, cfg, back)

	var fe *field.Error
	require.True(t, errors.As(json.Unmarshal([]byte(`{"secret":"x"}`), &back), &fe), "json.Unmarshal is strict too")
	assert.Equal(t, "secret", fe.Field)
}

func TestConfig_masked_hides_query_values(t *testing.T) {
	tests := []struct{ url, want string }{
		{"https://erp.example.com/in?token=s3cr3t-t0ken-AbCd&tenant=acme", "https://erp.example.com/in?token=****AbCd&tenant=****"},
		{"https://erp.example.com/in?sig=a%2Fb%26c%3Dd%20e-long-value", "https://erp.example.com/in?sig=****alue"},
		{"https://erp.example.com/in?flag&empty=", "https://erp.example.com/in?flag&empty="},
		{"https://u:pa55w0rd-long-enough@erp.example.com/in?key=k-1234567890", "https://u:xxxxx@erp.example.com/in?key=****7890"},
		{"https://erp.example.com/in", "https://erp.example.com/in"},
		{"https://erp.example.com/in?", "https://erp.example.com/in?"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			m := webhook.Config{URL: tt.url}.Masked().(webhook.Config)

			assert.Equal(t, tt.want, m.URL)
			require.NoError(t, webhook.Config{URL: tt.url}.Validate())
		})
	}

	secretTail := webhook.Config{URL: "https://a.example/in?k=0123456789%26%23%20x"}.Masked().(webhook.Config).URL
	assert.Equal(t, "https://a.example/in?k=****%26%23+x", secretTail, "the kept tail is escaped again")
}
