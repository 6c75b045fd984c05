package webhook

import (
	"cmp"
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sinkbus/sinkbus/field"
	"github.com/sinkbus/sinkbus/sinks"
)

// Signature modes of Config.Signature.
const (
	// SignatureStandard signs as Standard Webhooks do: webhook-id,
	// webhook-timestamp and webhook-signature headers.
	SignatureStandard = "standard"
	// SignatureHMACSHA256 sends one header holding the hex HMAC-SHA256 of the
	// body, as Commerce Layer's X-CommerceLayer-Signature.
	SignatureHMACSHA256 = "hmac-sha256"
	// SignatureNone sends no signature.
	SignatureNone = "none"
)

// Body formats of Config.Format.
const (
	// FormatEnvelope posts the sinkbus envelope (sinks.AppendEnvelope).
	FormatEnvelope = "envelope"
	// FormatCloudEvents posts a CloudEvents 1.0 event in structured JSON mode.
	FormatCloudEvents = "cloudevents"
)

// Defaults of Config.
const (
	DefaultTimeout         = 30 * time.Second
	DefaultSignatureHeader = "X-Sinkbus-Signature"
	DefaultSource          = "sinkbus"
	// MinTimeout is the shortest Timeout Validate accepts.
	MinTimeout = time.Millisecond
	// MaxTimeout is the longest Timeout Validate accepts: an attempt that
	// waits longer holds a delivery slot of the integration for nothing.
	MaxTimeout = 5 * time.Minute
)

// Type is the "webhook" integration type. Importing this package registers it
// in the default registry (sinks.DefaultRegistry), so a bus without a
// registry of its own builds it from JSON too.
// Its decoder also accepts NewStore's "callback_url" for "url".
var Type = sinks.Type{Name: "webhook", Decode: decode}

func init() { sinks.Register(Type) }

func decode(configuration json.RawMessage) (sinks.Config, error) {
	var c Config
	if err := c.UnmarshalJSON(configuration); err != nil {
		return nil, err
	}
	return c, nil
}

// Config configures the webhook sink. The zero value of every field but URL
// is usable. It is also the "configuration" object of a webhook integration,
// with the JSON names below.
type Config struct {
	// URL receives a POST per event. It must be http or https. Credentials
	// in it (user:password@) are sent as basic authentication. Masked shows
	// the password and every query value masked, as either may be a
	// credential (?token=...).
	URL string `json:"url"`

	// SecretKey signs every request. A "whsec_<base64>" secret (Standard
	// Webhooks) signs with the decoded bytes: receivers pass it as it is to
	// any Standard Webhooks library. Any other string (Elastic Path's example
	// "SOME_SECRET_KEY") signs with its bytes as they are, which those
	// libraries do not do by default: they base64-decode every secret, so
	// a receiver must give them the raw bytes instead (the reference
	// libraries' raw-key constructor, such as Go's NewWebhookRaw), or
	// refuses every request. Verify and NewVerifier read both forms as the
	// sink does. Empty: requests are not signed. Not allowed with
	// SignatureNone.
	SecretKey string `json:"secret_key,omitempty"`

	// PreviousSecretKey also signs while receivers move to a new SecretKey:
	// the signature header then carries both signatures. Empty: only
	// SecretKey signs.
	PreviousSecretKey string `json:"previous_secret_key,omitempty"`

	// APIKey is sent as "Authorization: Bearer <api_key>" (NewStore).
	// Empty: no Authorization header.
	APIKey string `json:"api_key,omitempty"`

	// Headers are added to every request. Headers the sink sets itself
	// (Content-Type, webhook-*, X-Sinkbus-*, the signature header,
	// Authorization when APIKey or URL credentials are set) are refused.
	Headers map[string]string `json:"headers,omitempty"`

	// Timeout bounds one attempt, from dialling to the response headers and
	// the bounded read of the response body. Zero means 30 s, the limit
	// Elastic Path gives its receivers; Commerce Layer uses 3 s. At most
	// MaxTimeout.
	//
	// Inside the bus it is the integration's default per-attempt timeout
	// (AttemptTimeout): the delivery chain sets each attempt's deadline,
	// from the integration's delivery timeout when that is set, and the
	// sink keeps to it. The sink applies Timeout itself only to a message
	// whose context has no deadline (a plain Watermill user).
	Timeout sinks.Duration `json:"timeout,omitempty"`

	// Signature is SignatureStandard, SignatureHMACSHA256 or SignatureNone.
	// Empty means SignatureStandard.
	Signature string `json:"signature,omitempty"`

	// SignatureHeader is the header of SignatureHMACSHA256. Empty means
	// X-Sinkbus-Signature.
	SignatureHeader string `json:"signature_header,omitempty"`

	// Format is FormatEnvelope or FormatCloudEvents. Empty means
	// FormatEnvelope.
	Format string `json:"format,omitempty"`

	// Source is the CloudEvents "source" attribute. Empty means "sinkbus".
	Source string `json:"source,omitempty"`

	// AllowPrivateNetworks lets the sink connect to loopback, private,
	// link-local and other internal addresses. By default they are refused
	// after DNS resolution, so that an integration cannot probe the network
	// the application runs in. The bus accepts an integration that sets it
	// only when the application allows it (bus.Config.AllowPrivateNetworks,
	// see UsesPrivateNetworks); a Publisher built with New directly takes it
	// as it is.
	AllowPrivateNetworks bool `json:"allow_private_networks,omitempty"`

	// MaxConnections caps the connections to the destination. Zero means no
	// cap: the bus's concurrency bounds them.
	MaxConnections int `json:"max_connections,omitempty"`
}

var (
	_ sinks.Config           = Config{}
	_ sinks.AttemptTimeouter = Config{}
	_ sinks.Networked        = Config{}
)

// UnmarshalJSON decodes a configuration strictly: unknown fields are errors.
// NewStore's "callback_url" is accepted for "url".
func (c *Config) UnmarshalJSON(data []byte) error {
	var fields map[string]json.RawMessage
	err := field.DecodeStrict(data, &fields)
	if err != nil {
		return err
	}
	var callbackURL string
	for k, raw := range fields {
		// encoding/json matches names without regard to case; so does this.
		if !strings.EqualFold(k, "callback_url") {
			continue
		}
		if err := json.Unmarshal(raw, &callbackURL); err != nil {
			return field.New("callback_url", "must be a string")
		}
		delete(fields, k)
		if data, err = json.Marshal(fields); err != nil {
			return field.New("", "invalid JSON: %s", err.Error())
		}
		break
	}
	type plain Config
	var p plain
	if err := field.DecodeStrict(data, &p); err != nil {
		return err
	}
	if callbackURL != "" {
		if p.URL != "" && p.URL != callbackURL {
			return field.New("callback_url", "conflicts with url; set one of them")
		}
		p.URL = callbackURL
	}
	*c = Config(p)
	return nil
}

// Type returns "webhook".
func (c Config) Type() string { return Type.Name }

// AttemptTimeout returns the configured timeout, else 30 s.
func (c Config) AttemptTimeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout.D()
	}
	return DefaultTimeout
}

// NewPublisher builds the sink; see New.
func (c Config) NewPublisher(env sinks.Env) (message.Publisher, error) {
	p, err := New(c, env)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// Masked returns a copy with the secrets replaced by sinks.Mask: the keys,
// every custom header value, as such headers usually carry credentials
// (X-Api-Key), and every query value of the URL (?token=****). A password
// in the URL becomes "xxxxx" (url.URL.Redacted). An update that sends the
// masked URL back unchanged keeps the stored one (the bus restores values
// sent back as shown).
func (c Config) Masked() sinks.Config {
	m := c
	m.SecretKey = sinks.Mask(c.SecretKey)
	m.PreviousSecretKey = sinks.Mask(c.PreviousSecretKey)
	m.APIKey = sinks.Mask(c.APIKey)
	if u, err := url.Parse(c.URL); err == nil {
		changed := false
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
			changed = true
		}
		if u.RawQuery != "" {
			u.RawQuery = maskQuery(u.RawQuery)
			changed = true
		}
		if changed {
			m.URL = u.String()
		}
	}
	if c.Headers != nil {
		m.Headers = make(map[string]string, len(c.Headers))
		for k, v := range c.Headers {
			m.Headers[k] = sinks.Mask(v)
		}
	}
	return m
}

// maskQuery returns rawQuery with every value masked and the keys kept:
// "token=s3cr3t-value-1234&tenant=acme" becomes "token=****1234&tenant=****".
func maskQuery(rawQuery string) string {
	var b strings.Builder
	for i, pair := range strings.Split(rawQuery, "&") {
		if i > 0 {
			b.WriteByte('&')
		}
		k, v, ok := strings.Cut(pair, "=")
		b.WriteString(k)
		if !ok {
			continue
		}
		b.WriteByte('=')
		if uv, err := url.QueryUnescape(v); err == nil {
			v = uv
		}
		// The stars stay literal ('*' is allowed in a query), the kept tail
		// is escaped again.
		masked := sinks.Mask(v)
		tail, _ := strings.CutPrefix(masked, "****")
		if masked != "" {
			b.WriteString("****")
		}
		b.WriteString(url.QueryEscape(tail))
	}
	return b.String()
}

func (c *Config) setDefaults() {
	if c.Timeout == 0 {
		c.Timeout = sinks.Duration(DefaultTimeout)
	}
	if c.Signature == "" {
		c.Signature = SignatureStandard
	}
	if c.Signature == SignatureHMACSHA256 && c.SignatureHeader == "" {
		c.SignatureHeader = DefaultSignatureHeader
	}
	if c.Format == "" {
		c.Format = FormatEnvelope
	}
	if c.Format == FormatCloudEvents && c.Source == "" {
		c.Source = DefaultSource
	}
}

// Validate returns every problem of the configuration at once. It never
// quotes a secret.
func (c Config) Validate() error {
	var p field.Problems
	u := c.validateURL(&p)
	if c.SecretKey != "" {
		if _, err := decodeSecret(c.SecretKey); err != nil {
			p.Add("secret_key", err.Error())
		}
	}
	if c.PreviousSecretKey != "" {
		if _, err := decodeSecret(c.PreviousSecretKey); err != nil {
			p.Add("previous_secret_key", err.Error())
		}
		if c.SecretKey == "" {
			p.Add("previous_secret_key", "requires secret_key")
		}
	}
	if strings.ContainsFunc(c.APIKey, isCTL) {
		p.Add("api_key", "must not contain control characters")
	}
	if c.APIKey != "" && u != nil && u.User != nil {
		p.Add("api_key", "cannot be combined with credentials in url")
	}
	switch {
	case c.Timeout < 0:
		p.Add("timeout", "must not be negative")
	case c.Timeout > 0 && c.Timeout.D() < MinTimeout:
		p.Add("timeout", "must be at least %s", MinTimeout)
	case c.Timeout.D() > MaxTimeout:
		p.Add("timeout", "must be at most %s", MaxTimeout)
	}
	switch c.Signature {
	case "", SignatureStandard:
	case SignatureNone:
		// A secret that signs nothing would let its owner believe requests
		// are signed.
		if c.SecretKey != "" {
			p.Add("secret_key", "must be empty when signature is %s", SignatureNone)
		}
		if c.PreviousSecretKey != "" {
			p.Add("previous_secret_key", "must be empty when signature is %s", SignatureNone)
		}
	case SignatureHMACSHA256:
		if c.SecretKey == "" {
			p.Add("secret_key", "is required when signature is %s", SignatureHMACSHA256)
		}
	default:
		p.Add("signature", "must be one of %s, %s, %s", SignatureStandard, SignatureHMACSHA256, SignatureNone)
	}
	if c.SignatureHeader != "" {
		switch {
		case !validHeaderName(c.SignatureHeader):
			p.Add("signature_header", "must be a valid header name")
		case c.Signature != SignatureHMACSHA256:
			p.Add("signature_header", "is used only when signature is %s", SignatureHMACSHA256)
		case !strings.EqualFold(c.SignatureHeader, DefaultSignatureHeader) &&
			c.fixedHeader(http.CanonicalHeaderKey(c.SignatureHeader), u):
			p.Add("signature_header", "is a header the sink sets itself")
		}
	}
	switch c.Format {
	case "", FormatEnvelope:
		if c.Source != "" {
			p.Add("source", "is used only when format is %s", FormatCloudEvents)
		}
	case FormatCloudEvents:
		if c.Source != "" {
			if _, err := url.Parse(c.Source); err != nil || strings.ContainsFunc(c.Source, isCTL) {
				p.Add("source", "must be a URI reference")
			}
		}
	default:
		p.Add("format", "must be %s or %s", FormatEnvelope, FormatCloudEvents)
	}
	if c.MaxConnections < 0 {
		p.Add("max_connections", "must not be negative")
	}
	c.validateHeaders(&p, u)
	return p.Err()
}

// validateURL checks URL and returns it parsed, or nil.
func (c Config) validateURL(p *field.Problems) *url.URL {
	if c.URL == "" {
		p.Add("url", "is required")
		return nil
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		p.Add("url", "is not a valid URL")
		return nil
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		p.Add("url", "must be https or http")
		return nil
	}
	if u.Host == "" || u.Hostname() == "" {
		p.Add("url", "must name a host")
		return nil
	}
	if port := u.Port(); port != "" && !validPort(port) {
		p.Add("url", "has an invalid port")
		return nil
	}
	// What Masked shows, edited and sent back, would deliver "****" as a
	// credential: only the URL sent back unchanged gets the stored one.
	for _, pair := range strings.Split(u.RawQuery, "&") {
		k, v, _ := strings.Cut(pair, "=")
		if uv, err := url.QueryUnescape(v); err == nil && sinks.IsMasked(uv) {
			p.Add("url", "query value of %q is masked (****); send the real value", k)
		}
	}
	return u
}

func validPort(s string) bool {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
		n = n*10 + int(s[i]-'0')
		if n > 65535 {
			return false
		}
	}
	return n > 0
}

func (c Config) validateHeaders(p *field.Problems, u *url.URL) {
	names := make([]string, 0, len(c.Headers))
	for k := range c.Headers {
		names = append(names, k)
	}
	sort.Strings(names)
	seen := make(map[string]bool, len(names))
	for _, name := range names {
		if !validHeaderName(name) {
			p.Add("headers", "%q is not a valid header name", name)
			continue
		}
		canon := http.CanonicalHeaderKey(name)
		field := "headers." + name
		switch {
		case seen[canon]:
			p.Add(field, "is given twice")
		case c.ownedHeader(canon, u):
			p.Add(field, "is a header the sink sets itself")
		case strings.ContainsFunc(c.Headers[name], isCTL):
			p.Add(field, "value must not contain control characters")
		}
		seen[canon] = true
	}
}

// ownedHeader reports whether the sink sets the header canon itself.
func (c Config) ownedHeader(canon string, u *url.URL) bool {
	return c.fixedHeader(canon, u) || (c.Signature == SignatureHMACSHA256 &&
		canon == http.CanonicalHeaderKey(cmp.Or(c.SignatureHeader, DefaultSignatureHeader)))
}

// fixedHeader reports whether canon is a header the sink sets whatever the
// signature mode.
func (c Config) fixedHeader(canon string, u *url.URL) bool {
	switch canon {
	case "Content-Type", "Content-Length", "Content-Encoding", "Transfer-Encoding",
		"Host", "Connection", "Keep-Alive", "Te", "Trailer", "Upgrade":
		return true
	case "Authorization":
		return c.APIKey != "" || (u != nil && u.User != nil)
	}
	return strings.HasPrefix(canon, "Webhook-") || strings.HasPrefix(canon, "X-Sinkbus-")
}

// validHeaderName reports whether s is an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		switch {
		case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0:
		default:
			return false
		}
	}
	return true
}

// isCTL reports control characters other than horizontal tab, which header
// values may not hold.
func isCTL(r rune) bool { return (r < 0x20 && r != '\t') || r == 0x7f }

// UsesPrivateNetworks implements sinks.Networked: the bus allows
// AllowPrivateNetworks only where the application does.
func (c Config) UsesPrivateNetworks() bool { return c.AllowPrivateNetworks }

// Hosts implements sinks.Networked: the URL's host.
func (c Config) Hosts() []sinks.Target {
	if u, err := url.Parse(c.URL); err == nil && u.Hostname() != "" {
		return []sinks.Target{{Field: "url", Value: u.Hostname()}}
	}
	return nil
}
