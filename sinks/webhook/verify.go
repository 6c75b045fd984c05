package webhook

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Errors of the receiver side. Test with errors.Is.
var (
	ErrMissingHeaders   = errors.New("sinkbus: webhook signature headers missing or malformed")
	ErrInvalidSignature = errors.New("sinkbus: webhook signature invalid")
	ErrTimestampTooOld  = errors.New("sinkbus: webhook timestamp too old")
	ErrTimestampTooNew  = errors.New("sinkbus: webhook timestamp too new")
)

// Receiver defaults.
const (
	// DefaultTolerance is how far webhook-timestamp may be from the
	// receiver's clock, either way, as Standard Webhooks recommend.
	DefaultTolerance = 5 * time.Minute
	// DefaultMaxBodyBytes bounds the body Verifier.Middleware reads.
	DefaultMaxBodyBytes = 1 << 20
)

// Signature is one entry of a webhook-signature header.
type Signature struct {
	// Version is the scheme: "v1" is HMAC-SHA256.
	Version string
	// Value is the decoded signature.
	Value []byte
}

// ParseSignatureHeader reads a Standard Webhooks webhook-signature value:
// space-separated "version,base64" entries (canonical standard base64).
// Malformed entries are skipped,
// so that one unknown scheme does not hide a valid signature; a header
// without any well-formed entry is ErrInvalidSignature, an empty one
// ErrMissingHeaders.
func ParseSignatureHeader(value string) ([]Signature, error) {
	fields := strings.Fields(value)
	if len(fields) == 0 {
		return nil, ErrMissingHeaders
	}
	sigs := make([]Signature, 0, len(fields))
	for _, f := range fields {
		version, enc, ok := strings.Cut(f, ",")
		if !ok || version == "" || enc == "" {
			continue
		}
		v, err := base64.StdEncoding.Strict().DecodeString(enc)
		if err != nil {
			continue
		}
		sigs = append(sigs, Signature{Version: version, Value: v})
	}
	if len(sigs) == 0 {
		return nil, ErrInvalidSignature
	}
	return sigs, nil
}

// Verify checks a Standard Webhooks request: the webhook-id,
// webhook-timestamp and webhook-signature headers against body, with any of
// secrets ("whsec_" or raw, as Config.SecretKey). The timestamp may be at
// most tolerance away from now (zero means DefaultTolerance). Signatures are
// compared in constant time. With no secret, every request is
// ErrInvalidSignature. A receiver that verifies many requests should build a
// Verifier once instead.
func Verify(secrets []string, headers http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	keys, err := decodeSecrets(secrets)
	if err != nil {
		return err
	}
	return verifyStandard(keys, headers, body, now, tolerance)
}

// VerifyHMAC checks the single-header signature of SignatureHMACSHA256:
// signature holds one or more hex HMAC-SHA256 values of body (separated by
// spaces or commas, as during key rotation), and one must match a secret.
// This mode signs no timestamp, so it cannot refuse a replayed request.
func VerifyHMAC(secrets []string, signature string, body []byte) error {
	keys, err := decodeSecrets(secrets)
	if err != nil {
		return err
	}
	return verifyHMAC(keys, signature, body)
}

func verifyStandard(keys [][]byte, headers http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	if len(keys) == 0 {
		return ErrInvalidSignature
	}
	id := headers.Get(headerWebhookID)
	ts := headers.Get(headerWebhookTimestamp)
	sig := headers.Get(headerWebhookSignature)
	if id == "" || ts == "" || sig == "" {
		return ErrMissingHeaders
	}
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return ErrMissingHeaders
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	sent := time.Unix(secs, 0)
	switch {
	case now.Sub(sent) > tolerance:
		return ErrTimestampTooOld
	case sent.Sub(now) > tolerance:
		return ErrTimestampTooNew
	}
	sigs, err := ParseSignatureHeader(sig)
	if err != nil {
		return err
	}
	for _, key := range keys {
		h := hmac.New(sha256.New, key)
		h.Write(appendSignedPrefix(nil, id, []byte(ts)))
		h.Write(body)
		want := h.Sum(nil)
		for _, s := range sigs {
			if s.Version == "v1" && hmac.Equal(s.Value, want) {
				return nil
			}
		}
	}
	return ErrInvalidSignature
}

func verifyHMAC(keys [][]byte, signature string, body []byte) error {
	if len(keys) == 0 {
		return ErrInvalidSignature
	}
	fields := strings.FieldsFunc(signature, func(r rune) bool { return r == ' ' || r == ',' })
	if len(fields) == 0 {
		return ErrMissingHeaders
	}
	for _, key := range keys {
		h := hmac.New(sha256.New, key)
		h.Write(body)
		want := h.Sum(nil)
		for _, f := range fields {
			got, err := hex.DecodeString(f)
			if err == nil && hmac.Equal(got, want) {
				return nil
			}
		}
	}
	return ErrInvalidSignature
}

// Verifier checks the signatures of the requests a receiver gets. Build it
// with NewVerifier; the exported fields may be set before first use.
type Verifier struct {
	// Tolerance is how far webhook-timestamp may be from Now. Zero means
	// DefaultTolerance.
	Tolerance time.Duration
	// SignatureHeader selects the single-header hex HMAC mode
	// (SignatureHMACSHA256) and names its header. Empty means Standard
	// Webhooks headers.
	SignatureHeader string
	// MaxBodyBytes bounds the body Middleware reads; a longer body is
	// answered 413. Zero means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Now tells the time. Nil means time.Now.
	Now func() time.Time

	keys [][]byte
}

// NewVerifier returns a Verifier accepting signatures by any of secrets
// ("whsec_" or raw, as Config.SecretKey): list the previous secret too
// while rotating.
func NewVerifier(secrets ...string) (*Verifier, error) {
	if len(secrets) == 0 {
		return nil, errors.New("sinkbus: webhook verifier needs at least one secret")
	}
	keys, err := decodeSecrets(secrets)
	if err != nil {
		return nil, err
	}
	return &Verifier{keys: keys}, nil
}

// Verify checks the signature of a request with headers and body.
func (v *Verifier) Verify(headers http.Header, body []byte) error {
	if v.SignatureHeader != "" {
		return verifyHMAC(v.keys, headers.Get(v.SignatureHeader), body)
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	return verifyStandard(v.keys, headers, body, now(), v.Tolerance)
}

// Middleware reads the request body (at most MaxBodyBytes), verifies it,
// and passes the request with its body on to next; it answers 401 to a
// request that fails verification and 413 to one that is too large.
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	limit := v.MaxBodyBytes
	if limit <= 0 {
		limit = DefaultMaxBodyBytes
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
				return
			}
			http.Error(w, "cannot read request body", http.StatusBadRequest)
			return
		}
		if err := v.Verify(r.Header, body); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		next.ServeHTTP(w, r)
	})
}
