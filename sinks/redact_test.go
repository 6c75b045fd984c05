package sinks_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/s3"
	"github.com/sinkbus/sinkbus/sinks/sqs"
	"github.com/sinkbus/sinkbus/sinks/stomp"
	"github.com/sinkbus/sinkbus/sinks/webhook"
)

func TestRedactor_removes_credential_shapes(t *testing.T) {
	r := sinks.NewRedactor()
	for in, want := range map[string]string{
		"Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload": "Authorization: Bearer [redacted]",
		"authorization: Basic dXNlcjpwYXNz":                  "authorization: Basic [redacted]",
		`{"api_key":"nsk_123456"}`:                           `{"api_key":"[redacted]"}`,
		"X-Api-Key: k-1234":                                  "X-Api-Key: [redacted]",
		"password=hunter22&user=ada":                         "password=[redacted]&user=ada",
		"webhook-signature: v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4= v1,AAAAAAAAAAAAAAAAAAAAAAAA": "webhook-signature: [redacted] v1,[redacted]",
		"X-Sinkbus-Signature: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08":          "X-Sinkbus-Signature: [redacted]",
		"key AKIAIOSFODNN7EXAMPLE in use":                                    "key [redacted] in use",
		"Credential=AKIA/20260101/us-east-1/s3, Signed":                      "Credential=[redacted], Signed",
		"token eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0In0.sig": "token [redacted]",
		"secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw":                      "secret [redacted]",
		// Ordinary text stays.
		"User name [u] or password is invalid.":            "User name [u] or password is invalid.",
		"Request to URL https://erp.example.com/h failed.": "Request to URL https://erp.example.com/h failed.",
		"secret_key is required":                           "secret_key is required",
	} {
		assert.Equal(t, want, r.String(in), in)
	}
}

func TestRedactor_removes_the_integrations_secrets(t *testing.T) {
	r := sinks.NewRedactor("s3cr3t-value", "guest", "")
	assert.Equal(t, "got [redacted] twice: [redacted]", r.String("got s3cr3t-value twice: s3cr3t-value"))
	assert.Equal(t, "guest stays: too short to look for", r.String("guest stays: too short to look for"))
	assert.Equal(t, "cut at the limit: [redacted]", r.String("cut at the limit: s3cr3t-v"),
		"the start of a secret at the end of an excerpt goes too")
}

func TestRedactor_Error_keeps_the_class(t *testing.T) {
	r := sinks.NewRedactor("s3cr3t-value")
	se := &sinks.StatusError{Destination: "https://erp.example.com", StatusCode: 400, Body: "key s3cr3t-value refused"}
	err := r.Error(sinks.Permanent(fmt.Errorf("wrapped: %w", se)))
	assert.NotContains(t, err.Error(), "s3cr3t-value")
	assert.ErrorIs(t, err, sinks.ErrPermanent)
	var got *sinks.StatusError
	require.ErrorAs(t, err, &got)
	assert.Equal(t, 400, got.StatusCode)
	class, _ := sinks.Classify(err)
	assert.Equal(t, sinks.ClassPermanent, class)
	plain := errors.New("nothing to hide")
	assert.Same(t, plain, r.Error(plain))
	assert.NoError(t, r.Error(nil))
}

func TestRedactor_Logger_redacts_messages_errors_and_fields(t *testing.T) {
	var buf bytes.Buffer
	l := sinks.NewRedactor("s3cr3t-value").Logger(watermill.NewStdLoggerWithOut(&buf, true, false))
	l = l.With(watermill.LogFields{"url": "https://x/?k=s3cr3t-value"})
	l.Error("failed with s3cr3t-value", errors.New("Authorization: Bearer abcdefgh"), watermill.LogFields{"body": "s3cr3t-value"})
	l.Info("info s3cr3t-value", nil)
	l.Debug("debug s3cr3t-value", nil)
	l.Trace("trace s3cr3t-value", nil)
	out := buf.String()
	assert.NotContains(t, out, "s3cr3t-value")
	assert.NotContains(t, out, "abcdefgh")
	for _, want := range []string{`msg="failed with [redacted]"`, "body=[redacted]", `err="Authorization: Bearer [redacted]"`,
		"url=https://x/?k=[redacted]", `msg="info [redacted]"`, `msg="debug [redacted]"`} {
		assert.Contains(t, out, want)
	}
}

func TestSecretsOf_every_built_in_type(t *testing.T) {
	for _, tc := range []struct {
		cfg  sinks.Config
		want []string
	}{
		{webhook.Config{URL: "https://ada:pw-1234@erp.example.com/h?token=tok-5678", SecretKey: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
			APIKey: "api-key-1", Headers: map[string]string{"X-Api-Key": "hdr-key-1"}},
			[]string{"pw-1234", "YWRhOnB3LTEyMzQ=", "tok-5678", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "api-key-1", "hdr-key-1"}},
		{sqs.Config{URL: "https://sqs.eu-west-1.amazonaws.com/1/q", AccessKeyID: "AKIAEXAMPLE0001", SecretAccessKey: "secret-1", SessionToken: "session-1"},
			[]string{"AKIAEXAMPLE0001", "secret-1", "session-1"}},
		{stomp.Config{Addresses: []string{"stomp://mq"}, Destination: "/queue/q", Username: "user1", Password: "pass-1"}, []string{"pass-1"}},
		{s3.Config{Bucket: "b", AccessKeyID: "AKIAEXAMPLE0002", SecretAccessKey: "secret-2"}, []string{"AKIAEXAMPLE0002", "secret-2"}},
	} {
		assert.ElementsMatch(t, tc.want, sinks.SecretsOf(tc.cfg), tc.cfg.Type())
	}
}
