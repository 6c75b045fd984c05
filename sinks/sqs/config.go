package sqs

import (
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sinkbus/sinkbus/field"
	"github.com/sinkbus/sinkbus/sinks"
)

// Type is the "aws_sqs" integration type. Importing this package registers it
// in the default registry (sinks.DefaultRegistry), so a bus without a
// registry of its own builds it from JSON too.
var Type = sinks.Type{Name: "aws_sqs", Decode: sinks.DecodeInto[Config]}

func init() { sinks.Register(Type) }

// Limits of Amazon SQS that the sink keeps on the client side.
const (
	// DefaultMaxMessageSize is SQS's historical message size limit (256 KiB),
	// which every SQS-compatible server accepts. Body and attributes count.
	DefaultMaxMessageSize = 256 << 10
	// MaxMessageSizeLimit is the largest message AWS accepts since 2025 (1 MiB).
	MaxMessageSizeLimit = 1 << 20
	// MaxAttributes is how many message attributes SQS allows on one message.
	MaxAttributes = 10
	// MaxBatchEntries is how many messages one SendMessageBatch may carry.
	MaxBatchEntries = 10
	// DefaultBatchWait is the longest a send waits for companions (see
	// Config.BatchWait).
	DefaultBatchWait = 2 * time.Millisecond
)

// Config is the configuration of an aws_sqs integration: Elastic Path's
// {"url","aws_access_key_id","aws_secret_access_key","region"}, plus options
// whose zero values keep Elastic Path's behaviour.
type Config struct {
	// URL is the queue URL, https://sqs.<region>.amazonaws.com/<account>/<name>.
	// Required. A name ending in ".fifo" is a FIFO queue. On a host that is
	// not an AWS one (an SQS-compatible server) the URL must still end in
	// /<account>/<name>.
	URL string `json:"url"`
	// AccessKeyID and SecretAccessKey are static credentials, both or
	// neither. Neither: the default AWS credential chain (environment,
	// shared files, container or instance role).
	AccessKeyID     string `json:"aws_access_key_id,omitempty"`
	SecretAccessKey string `json:"aws_secret_access_key,omitempty"`
	// SessionToken goes with temporary static credentials (key ids starting
	// with ASIA). Empty for long-term keys.
	SessionToken string `json:"aws_session_token,omitempty"`
	// Region is the queue's region. Empty means the region the URL names; it
	// is required when the URL names none.
	Region string `json:"region,omitempty"`
	// Endpoint overrides where requests go (an SQS-compatible server, a VPC
	// endpoint), e.g. http://127.0.0.1:9324. Empty means the region's SQS
	// endpoint for an AWS URL, else the URL's own scheme and host.
	Endpoint string `json:"endpoint,omitempty"`
	// AllowPrivateNetworks lets the sink connect to loopback, private,
	// link-local and other internal addresses (a local SQS-compatible
	// server, a VPC endpoint's private address). By default the network
	// guard refuses them after DNS resolution (package netguard). The bus
	// accepts it only where the application allows private networks
	// (bus.Config.AllowPrivateNetworks).
	AllowPrivateNetworks bool `json:"allow_private_networks,omitempty"`
	// CreateQueue creates the queue (FIFO for a .fifo name) when a send finds
	// it missing. False: a missing queue is a permanent failure.
	CreateQueue bool `json:"create_queue,omitempty"`
	// FIFOGroupKey chooses a FIFO queue's MessageGroupId, within which SQS
	// keeps order: "tenant" (the default when empty), "name" (the event
	// name), or "payload.<path>" (a field of the payload, e.g.
	// "payload.order_id", dot-separated for nested objects). An event without
	// a value for the key goes to group DefaultGroup. Ignored for standard
	// queues.
	FIFOGroupKey string `json:"fifo_group_key,omitempty"`
	// Batch coalesces concurrent sends into SendMessageBatch requests. Nil
	// means true; false sends each event with its own SendMessage.
	Batch *bool `json:"batch,omitempty"`
	// BatchWait is the longest a send waits for companions while other sends
	// are in flight or have just ended; a lone send goes at once, and a batch
	// goes as soon as no other caller can join it. Zero means
	// DefaultBatchWait.
	BatchWait sinks.Duration `json:"batch_wait,omitempty"`
	// MaxMessageSize is the largest message (body plus attributes) the sink
	// sends, in bytes; larger events fail permanently before any request.
	// Zero means DefaultMaxMessageSize; at most MaxMessageSizeLimit. Raise it
	// only for queues whose MaximumMessageSize allows it.
	MaxMessageSize int `json:"max_message_size,omitempty"`
}

// DefaultGroup is the MessageGroupId of events that have no value for the
// configured FIFOGroupKey.
const DefaultGroup = "default"

var (
	_ sinks.Config     = Config{}
	_ sinks.OrderKeyer = Config{}
	_ sinks.Networked  = Config{}
)

// Type returns "aws_sqs".
func (c Config) Type() string { return Type.Name }

func (c *Config) setDefaults() {
	if c.FIFOGroupKey == "" {
		c.FIFOGroupKey = "tenant"
	}
	if c.Batch == nil {
		on := true
		c.Batch = &on
	}
	if c.BatchWait == 0 {
		c.BatchWait = sinks.Duration(DefaultBatchWait)
	}
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = DefaultMaxMessageSize
	}
}

// Validate returns every problem of the configuration at once.
func (c Config) Validate() error {
	c.setDefaults()
	var p field.Problems
	q, urlErr := parseQueueURL(c.URL)
	if urlErr != nil {
		p.Add("url", urlErr.Error())
	}
	switch {
	case c.Region == "" && urlErr == nil && q.region == "":
		p.Add("region", "required when the URL does not name one")
	case c.Region != "" && !regionPattern.MatchString(c.Region):
		p.Add("region", "must be an AWS region such as eu-west-1")
	case c.Region != "" && q.region != "" && c.Region != q.region:
		p.Add("region", "must be the region the URL names (%s)", q.region)
	}
	switch {
	case c.AccessKeyID != "" && c.SecretAccessKey == "":
		p.Add("aws_secret_access_key", "required with aws_access_key_id")
	case c.AccessKeyID == "" && c.SecretAccessKey != "":
		p.Add("aws_access_key_id", "required with aws_secret_access_key")
	}
	if c.SessionToken != "" && c.AccessKeyID == "" {
		p.Add("aws_session_token", "requires aws_access_key_id and aws_secret_access_key")
	}
	if c.Endpoint != "" {
		if _, err := parseEndpoint(c.Endpoint); err != nil {
			p.Add("endpoint", "must be an http or https URL without a path, such as http://127.0.0.1:9324")
		}
	}
	if _, err := parseGroupKey(c.FIFOGroupKey); err != nil {
		p.Add("fifo_group_key", `must be "tenant", "name" or "payload.<field>"`)
	}
	if c.BatchWait < 0 || c.BatchWait.D() > time.Second {
		p.Add("batch_wait", "must be between 0 and 1s")
	}
	if c.MaxMessageSize < 1024 || c.MaxMessageSize > MaxMessageSizeLimit {
		p.Add("max_message_size", "must be between 1024 and %d bytes", MaxMessageSizeLimit)
	}
	return p.Err()
}

// Masked returns a copy with the credentials replaced by sinks.Mask
// ("****PSYQ"), as Elastic Path shows them.
func (c Config) Masked() sinks.Config {
	c.AccessKeyID = sinks.Mask(c.AccessKeyID)
	c.SecretAccessKey = sinks.Mask(c.SecretAccessKey)
	c.SessionToken = sinks.Mask(c.SessionToken)
	return c
}

// UsesPrivateNetworks implements sinks.Networked.
func (c Config) UsesPrivateNetworks() bool { return c.AllowPrivateNetworks }

// Hosts implements sinks.Networked: the endpoint's host, else the queue
// URL's, where the requests go.
func (c Config) Hosts() []sinks.Target {
	if c.Endpoint != "" {
		if u, err := url.Parse(c.Endpoint); err == nil && u.Hostname() != "" {
			return []sinks.Target{{Field: "endpoint", Value: u.Hostname()}}
		}
		return nil
	}
	if u, err := url.Parse(c.URL); err == nil && u.Hostname() != "" {
		return []sinks.Target{{Field: "url", Value: u.Hostname()}}
	}
	return nil
}

// DefaultOrderKey is, for a FIFO queue, the order key that keeps each
// message group's events in publication order on their way through the bus:
// FIFOGroupKey in bus.Integration.OrderKey syntax ("tenant", "name" or
// "payload.<path>"), which uses the same names and the same dotted paths.
// SQS keeps order only among messages it receives one after the other; the
// bus delivers several events at once unless an order key holds back those
// of one group. For a standard queue, or a URL that does not parse, it is "".
//
// Events with no value for the key (no tenant, say) share DefaultGroup in
// the queue, and the bus orders them as one group too.
func (c Config) DefaultOrderKey() string {
	q, err := parseQueueURL(c.URL)
	if err != nil || !q.fifo {
		return ""
	}
	if _, err := parseGroupKey(c.FIFOGroupKey); err != nil {
		return ""
	}
	if c.FIFOGroupKey == "" {
		return "tenant"
	}
	return c.FIFOGroupKey
}

// NewPublisher builds the sink; see NewPublisher.
func (c Config) NewPublisher(env sinks.Env) (message.Publisher, error) {
	return NewPublisher(c, env)
}

// queueURL is a parsed queue URL.
type queueURL struct {
	raw     string
	origin  string // scheme://host of a non-AWS URL, empty for AWS ones
	region  string // empty when the host names none
	account string
	name    string
	fifo    bool
}

var (
	// Hosts of SQS queue URLs: sqs.<region>.amazonaws.com (also FIPS, China
	// and dual-stack forms) and the legacy <region>.queue.amazonaws.com.
	awsHost       = regexp.MustCompile(`^(?:sqs(?:-fips)?\.([a-z0-9-]+)\.(?:amazonaws\.com(?:\.cn)?|api\.aws)|(?:([a-z0-9-]+)\.)?queue\.amazonaws\.com(?:\.cn)?)$`)
	regionPattern = regexp.MustCompile(`^[a-z]{2}(?:-[a-z0-9]+)+-[0-9]+$`)
	queueName     = regexp.MustCompile(`^[A-Za-z0-9_-]{1,75}(?:\.fifo)?$|^[A-Za-z0-9_-]{1,80}$`)
	accountID     = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
)

type ruleError string

func (e ruleError) Error() string { return string(e) }

func parseQueueURL(raw string) (queueURL, error) {
	if raw == "" {
		return queueURL{}, ruleError("required")
	}
	const rule = ruleError("must be an SQS queue URL such as https://sqs.eu-west-1.amazonaws.com/123456789012/orders")
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
		u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return queueURL{}, rule
	}
	parts := strings.Split(strings.TrimPrefix(u.Path, "/"), "/")
	if len(parts) != 2 || !accountID.MatchString(parts[0]) {
		return queueURL{}, rule
	}
	if !queueName.MatchString(parts[1]) {
		return queueURL{}, ruleError("queue name must be 1 to 80 letters, digits, hyphens or underscores, .fifo suffix included")
	}
	q := queueURL{raw: raw, account: parts[0], name: parts[1], fifo: strings.HasSuffix(parts[1], ".fifo")}
	host := strings.ToLower(u.Hostname())
	if m := awsHost.FindStringSubmatch(host); m != nil {
		q.region = m[1] + m[2]
		if q.region == "" { // queue.amazonaws.com
			q.region = "us-east-1"
		}
	} else {
		q.origin = u.Scheme + "://" + u.Host
	}
	return q, nil
}

func parseEndpoint(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
		u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", ruleError("invalid endpoint")
	}
	return u.Scheme + "://" + u.Host, nil
}
