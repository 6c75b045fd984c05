package sinks

import (
	"encoding/base64"
	"net/url"
	"regexp"
	"sort"
	"strings"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/sinkbus/sinkbus/internal/jsondoc"
)

// Redacted replaces what a Redactor removes.
const Redacted = "[redacted]"

// minSecret is the shortest secret a Redactor looks for: shorter ones
// (a test broker's "guest", an access key "test") would blot out ordinary
// words, and guard little.
const minSecret = 6

// credentialPatterns match what is shaped like a credential whoever it
// belongs to: what a destination echoes of a request (its Authorization
// header, a signature) or of its own. The first group, when there is
// one, is kept.
var credentialPatterns = []*regexp.Regexp{
	regexp.MustCompile(`(\bv1,)[A-Za-z0-9+/]{16,}={0,2}`), // Standard Webhooks signature
	regexp.MustCompile(`(?i)(\bbearer\s+)[A-Za-z0-9\-._~+/]+=*`),
	regexp.MustCompile(`(?i)(\bauthorization"?\s*[:=]\s*"?\s*(?:bearer|basic|digest|aws4-hmac-sha256)?\s*)[^\s",;]+`),
	regexp.MustCompile(`(?i)(\b(?:x-)?(?:[a-z]+[-_])?(?:api[-_]?key|auth[-_]?token|access[-_]?token|secret(?:[-_]?(?:access[-_]?)?key)?|session[-_]?token|security[-_]?token|password|passcode|passwd|signature)"?\s*[:=]\s*"?)[^\s"';&}<]+`),
	regexp.MustCompile(`(\bCredential=)[^,\s]+`),                                    // AWS SigV4
	regexp.MustCompile(`\b(?:AKIA|ASIA)[A-Z0-9]{16}\b`),                             // AWS access key id
	regexp.MustCompile(`\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*`), // JWT
	regexp.MustCompile(`\bwhsec_[A-Za-z0-9+/=]+`),
	regexp.MustCompile(`\b[0-9a-fA-F]{64}\b`), // HMAC-SHA256 in hex
}

// Redactor removes secrets from the text the bus keeps or shows about an
// integration (log entries, rejected events, errors, log lines): the
// integration's own secrets, and whatever is shaped like a credential or a
// signature. The zero Redactor removes only the latter. Safe for
// concurrent use.
type Redactor struct {
	secrets []string // longest first, so that no part of one is left
}

// NewRedactor returns a Redactor of the given secrets (shorter ones than
// six bytes are ignored).
func NewRedactor(secrets ...string) *Redactor {
	r := &Redactor{}
	seen := make(map[string]bool)
	for _, s := range secrets {
		if len(s) >= minSecret && !seen[s] {
			seen[s] = true
			r.secrets = append(r.secrets, s)
		}
	}
	sort.Slice(r.secrets, func(i, j int) bool { return len(r.secrets[i]) > len(r.secrets[j]) })
	return r
}

// String returns s without the secrets. A text that ends with the start of
// a secret (an excerpt cut at its limit) loses that start too.
func (r *Redactor) String(s string) string {
	for _, secret := range r.secrets {
		s = strings.ReplaceAll(s, secret, Redacted)
		for n := len(secret) - 1; n >= minSecret; n-- {
			if strings.HasSuffix(s, secret[:n]) {
				s = s[:len(s)-n] + Redacted
				break
			}
		}
	}
	for _, p := range credentialPatterns {
		if p.NumSubexp() > 0 {
			s = p.ReplaceAllString(s, "${1}"+Redacted)
		} else {
			s = p.ReplaceAllString(s, Redacted)
		}
	}
	return s
}

// Error returns err with its text redacted; errors.Is and errors.As see
// err, so the failure keeps its class. Error(nil) is nil.
func (r *Redactor) Error(err error) error {
	if err == nil {
		return nil
	}
	text := err.Error()
	if red := r.String(text); red != text {
		return &redactedError{err: err, text: red}
	}
	return err
}

type redactedError struct {
	err  error
	text string
}

func (e *redactedError) Error() string { return e.text }
func (e *redactedError) Unwrap() error { return e.err }

// Logger returns l redacting every message, error and string field.
func (r *Redactor) Logger(l watermill.LoggerAdapter) watermill.LoggerAdapter {
	return redactingLogger{l: l, r: r}
}

type redactingLogger struct {
	l watermill.LoggerAdapter
	r *Redactor
}

func (rl redactingLogger) fields(f watermill.LogFields) watermill.LogFields {
	out := make(watermill.LogFields, len(f))
	for k, v := range f {
		switch x := v.(type) {
		case string:
			v = rl.r.String(x)
		case error:
			v = rl.r.Error(x)
		}
		out[k] = v
	}
	return out
}

func (rl redactingLogger) Error(msg string, err error, f watermill.LogFields) {
	rl.l.Error(rl.r.String(msg), rl.r.Error(err), rl.fields(f))
}
func (rl redactingLogger) Info(msg string, f watermill.LogFields) {
	rl.l.Info(rl.r.String(msg), rl.fields(f))
}
func (rl redactingLogger) Debug(msg string, f watermill.LogFields) {
	rl.l.Debug(rl.r.String(msg), rl.fields(f))
}
func (rl redactingLogger) Trace(msg string, f watermill.LogFields) {
	rl.l.Trace(rl.r.String(msg), rl.fields(f))
}
func (rl redactingLogger) With(f watermill.LogFields) watermill.LoggerAdapter {
	return redactingLogger{l: rl.l.With(rl.fields(f)), r: rl.r}
}

// SecretsOf returns the secrets of a configuration: the strings Masked
// changes. Of a URL it returns the password, its basic authentication
// header value and the query values rather than the whole URL.
func SecretsOf(c Config) []string {
	var out []string
	jsondoc.Strings("", jsondoc.Of(c), []any{jsondoc.Of(c.Masked())}, func(_, s string, masked []any) (string, bool) {
		if masked[0] != s {
			out = append(out, secretParts(s)...)
		}
		return "", false
	})
	return out
}

// secretParts returns the secrets a masked string holds.
func secretParts(s string) []string {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return []string{s}
	}
	var out []string
	if pw, ok := u.User.Password(); ok {
		out = append(out, pw, base64.StdEncoding.EncodeToString([]byte(u.User.Username()+":"+pw)))
	}
	for _, vs := range u.Query() {
		out = append(out, vs...)
	}
	return out
}
