package webhook

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/sinkbus/sinkbus/field"
	"github.com/sinkbus/sinkbus/netguard"
	"github.com/sinkbus/sinkbus/sinks"
)

// Response reading limits: the excerpt kept in a *sinks.StatusError, and how
// much more is read, to keep the connection, before closing it instead.
const (
	MaxResponseExcerpt = 2 << 10
	maxDrain           = 4 << 10
)

// maxRetryAfter caps a destination's Retry-After.
const maxRetryAfter = 24 * time.Hour

// Header names the sink sets, in canonical form.
const (
	headerWebhookID        = "Webhook-Id"
	headerWebhookTimestamp = "Webhook-Timestamp"
	headerWebhookSignature = "Webhook-Signature"
	headerTopic            = "X-Sinkbus-Topic"
	headerRequestID        = "X-Sinkbus-Request-Id"
	headerReplayed         = "X-Sinkbus-Replayed"
)

// idlePerDelivery is how many idle connections the sink keeps per
// delivery the bus may run at once. One each is not enough: a connection
// goes back to the pool only once its response is read, so a delivery that
// starts just before dials a new one, and the pool, full, closes one.
const idlePerDelivery = 2

// DeliveryError is a request that got no HTTP response: a network error, a
// refused address, a timeout. Destination never holds credentials.
type DeliveryError struct {
	Destination string
	Err         error
}

func (e *DeliveryError) Error() string {
	return "Request to URL " + e.Destination + " failed. Reason: " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *DeliveryError) Unwrap() error { return e.Err }

// Publisher is the webhook sink: a message.Publisher that POSTs each message
// to the configured URL. It is safe for concurrent use.
type Publisher struct {
	cfg     Config
	env     sinks.Env
	url     *url.URL // without credentials: they are in static
	dest    string   // url without credentials, query and fragment, for errors
	timeout time.Duration
	// transport sends the requests itself, without an http.Client: a
	// Transport never follows redirects, and the Client's redirect
	// bookkeeping (a copy of every request's headers) is not needed.
	transport *http.Transport

	static     http.Header // headers every request carries
	signers    []*signer   // current key first; none: unsigned
	sigHeader  string      // canonical header of SignatureHMACSHA256
	sourceJSON []byte      // CloudEvents source, as a JSON string

	mu     sync.RWMutex // held for reading by each Publish, so Close can wait for them
	closed bool
}

var (
	_ message.Publisher      = (*Publisher)(nil)
	_ sinks.MessagePublisher = (*Publisher)(nil)
)

// New validates cfg and builds the sink. It opens no connection.
func New(cfg Config, env sinks.Env) (*Publisher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	env = env.Defaults()

	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, field.New("url", "is not a valid URL")
	}
	p := &Publisher{
		cfg:     cfg,
		env:     env,
		timeout: cfg.Timeout.D(),
		static:  make(http.Header, 4+len(cfg.Headers)),
	}

	p.static.Set("Content-Type", "application/json")
	if cfg.Format == FormatCloudEvents {
		p.static.Set("Content-Type", "application/cloudevents+json; charset=utf-8")
		p.sourceJSON = sinks.AppendJSONString(nil, cfg.Source)
	}
	p.static.Set("User-Agent", UserAgent())
	if cfg.APIKey != "" {
		p.static.Set("Authorization", "Bearer "+cfg.APIKey)
	}
	if u.User != nil {
		pw, _ := u.User.Password()
		p.static.Set("Authorization", "Basic "+
			base64.StdEncoding.EncodeToString([]byte(u.User.Username()+":"+pw)))
		u.User = nil
	}
	for k, v := range cfg.Headers {
		p.static.Set(k, v)
	}
	p.url = u
	d := *u
	d.RawQuery, d.ForceQuery, d.Fragment, d.RawFragment = "", false, "", ""
	p.dest = d.String()

	if cfg.Signature != SignatureNone && cfg.SecretKey != "" {
		for _, s := range []string{cfg.SecretKey, cfg.PreviousSecretKey} {
			if s == "" {
				continue
			}
			key, err := decodeSecret(s)
			if err != nil {
				return nil, err
			}
			p.signers = append(p.signers, newSigner(key))
		}
	}
	if cfg.Signature == SignatureHMACSHA256 {
		p.sigHeader = http.CanonicalHeaderKey(cfg.SignatureHeader)
	}

	// No dial timeout of its own: every request's context has a deadline,
	// the attempt's or p.timeout, and bounds the dial with the rest.
	dialer := netguard.Guard(&net.Dialer{KeepAlive: 30 * time.Second}, cfg.AllowPrivateNetworks)
	idle := idlePerDelivery * env.Concurrency
	if cfg.MaxConnections > 0 {
		idle = min(idle, cfg.MaxConnections)
	}
	p.transport = &http.Transport{
		// No proxy: a proxy would dial the destination past the guard.
		Proxy:               nil,
		DialContext:         dialer.DialContext,
		ForceAttemptHTTP2:   u.Scheme == "https",
		MaxIdleConns:        idle,
		MaxIdleConnsPerHost: idle,
		MaxConnsPerHost:     cfg.MaxConnections,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
		// The response body is only excerpted: no need for gzip.
		DisableCompression: true,
	}
	return p, nil
}

// Publish POSTs each message to the destination, one after the other, and
// returns the first failure, which sinks.Classify understands: nil for a
// 2XX; a *sinks.StatusError for another status (408, 429 and 5XX
// retryable, with the Retry-After; others permanent); a *DeliveryError
// otherwise (retryable, or permanent for an address the guard refused).
// Each request is bound to msg.Context(): to its deadline when it has one
// (inside the bus, the attempt's), else to the configured timeout.
// Redirects are not followed. After Close it returns sinks.ErrClosed.
func (p *Publisher) Publish(topic string, msgs ...*message.Message) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return sinks.ErrClosed
	}
	for _, msg := range msgs {
		if err := p.deliver(topic, msg); err != nil {
			return err
		}
	}
	return nil
}

// PublishMessage is Publish of one message.
func (p *Publisher) PublishMessage(topic string, msg *message.Message) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return sinks.ErrClosed
	}
	return p.deliver(topic, msg)
}

// Close waits for the requests in flight (each bounded by the timeout) and
// closes the idle connections. It is idempotent.
func (p *Publisher) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.closed = true
		p.transport.CloseIdleConnections()
	}
	return nil
}

func (p *Publisher) deliver(topic string, msg *message.Message) error {
	parent := msg.Context()
	ctx := parent
	// A deadline on the message is the attempt's (the bus's delivery chain
	// sets it, from the integration's delivery timeout or AttemptTimeout):
	// it owns the timeout, longer or shorter than ours. Only a message
	// without one, from a plain Watermill user, gets p.timeout.
	if _, ok := parent.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(parent, p.timeout)
		defer cancel()
	}

	body := p.appendBody(topic, msg)
	header := p.header(body, topic, msg)
	sinks.InjectTrace(ctx, propagation.HeaderCarrier(header))
	rc, getBody := requestBody(body)
	req := (&http.Request{
		Method:        http.MethodPost,
		URL:           p.url,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        header,
		Body:          rc,
		GetBody:       getBody,
		ContentLength: int64(len(body)),
		Host:          p.url.Host,
	}).WithContext(ctx)

	resp, err := p.transport.RoundTrip(req)
	if err != nil {
		return p.requestError(parent, ctx, err)
	}
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(semconv.HTTPResponseStatusCode(resp.StatusCode))
	}
	return p.response(resp)
}

// headerValues holds the per-request header values of one request: the
// slices the header takes, and the bytes of the values (a request id, a
// timestamp and two signatures fit).
type headerValues struct {
	vals [6]string
	buf  [160]byte
}

// header returns the headers of one request, signing body. The per-request
// values, their bytes and the slices that hold them are one allocation, to
// keep allocations per request flat.
func (p *Publisher) header(body []byte, topic string, msg *message.Message) http.Header {
	h := make(http.Header, len(p.static)+6)
	for k, v := range p.static {
		h[k] = v // shared, read-only
	}
	hv := new(headerValues)
	vals := hv.vals[:0]
	set := func(k, v string) {
		vals = append(vals, v)
		h[k] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	s := hv.buf[:0]

	s = appendRequestID(s)
	idEnd := len(s)
	var tsEnd int
	if p.sigHeader == "" && p.cfg.Signature != SignatureNone {
		s = strconv.AppendInt(s, p.env.Clock.Now().Unix(), 10)
		tsEnd = len(s)
		for i, sg := range p.signers {
			if i > 0 {
				s = append(s, ' ')
			}
			s = sg.appendStandard(s, msg.UUID, s[idEnd:tsEnd], body)
		}
	} else {
		tsEnd = idEnd
		for i, sg := range p.signers {
			if i > 0 {
				s = append(s, ' ')
			}
			s = sg.appendHex(s, body)
		}
	}
	// The values are strings over s's bytes, which nothing writes again (s
	// is hv's, or its own array once the values outgrow it): no copy.
	str := unsafe.String(unsafe.SliceData(s), len(s))

	set(headerTopic, eventName(topic, msg))
	set(headerRequestID, str[:idEnd])
	if sinks.IsReplayed(msg) {
		set(headerReplayed, "true")
	}
	switch {
	case p.sigHeader != "":
		set(p.sigHeader, str[tsEnd:])
	case p.cfg.Signature != SignatureNone:
		set(headerWebhookID, msg.UUID)
		set(headerWebhookTimestamp, str[idEnd:tsEnd])
		if len(p.signers) > 0 {
			set(headerWebhookSignature, str[tsEnd:])
		}
	}
	return h
}

// appendRequestID appends a random UUID (version 4) to dst.
func appendRequestID(dst []byte) []byte {
	var b [16]byte
	hi, lo := rand.Uint64(), rand.Uint64()
	for i := 0; i < 8; i++ {
		b[i], b[8+i] = byte(hi>>(56-8*i)), byte(lo>>(56-8*i))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst = append(dst, '-')
		}
		dst = append(dst, hexDigits[c>>4], hexDigits[c&0xf])
	}
	return dst
}

const hexDigits = "0123456789abcdef"

// requestError classifies a request that got no response. The URL error's
// own text is dropped: it quotes the full URL, query secrets included.
func (p *Publisher) requestError(parent, ctx context.Context, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var blocked *netguard.BlockedError
	if errors.As(err, &blocked) {
		return sinks.Permanent(&DeliveryError{Destination: p.dest, Err: blocked})
	}
	if parent.Err() == nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("no response within %s: %w", p.timeout, context.DeadlineExceeded)
	}
	return &DeliveryError{Destination: p.dest, Err: err}
}

// response turns a response into the publish result, reading at most
// MaxResponseExcerpt+maxDrain bytes of its body.
func (p *Publisher) response(resp *http.Response) error {
	defer resp.Body.Close()
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		if resp.Body != http.NoBody {
			_, _ = io.CopyN(io.Discard, resp.Body, maxDrain)
		}
		return nil
	}
	buf := make([]byte, MaxResponseExcerpt)
	n, _ := io.ReadFull(resp.Body, buf)
	_, _ = io.CopyN(io.Discard, resp.Body, maxDrain)
	se := &sinks.StatusError{
		Destination: p.dest,
		StatusCode:  code,
		Body:        excerpt(buf[:n]),
	}
	if se.Class() == sinks.ClassRetryable {
		se.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), p.env.Clock.Now())
	}
	return se
}

// excerpt makes a response body safe to log: valid UTF-8, without the rune
// the limit may have cut, trimmed.
func excerpt(b []byte) string {
	for i := 1; i < utf8.UTFMax && i <= len(b); i++ {
		if start := len(b) - i; utf8.RuneStart(b[start]) {
			if !utf8.FullRune(b[start:]) {
				b = b[:start]
			}
			break
		}
	}
	return strings.TrimSpace(strings.ToValidUTF8(string(b), "\uFFFD"))
}

// parseRetryAfter reads a Retry-After value: delay seconds or an HTTP date
// (relative to now). Missing, invalid or past values are zero; values
// beyond a day are a day.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseUint(v, 10, 64); err == nil {
		if secs > uint64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}
