package stomp

import (
	"strconv"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sinkbus/sinkbus/field"
	"github.com/sinkbus/sinkbus/sinks"
)

// Type is the "stomp" integration type. Importing this package registers it
// in the default registry (sinks.DefaultRegistry), so a bus without a
// registry of its own builds it from JSON too.
var Type = sinks.Type{Name: "stomp", Decode: sinks.DecodeInto[Config]}

func init() { sinks.Register(Type) }

// Defaults of the zero Config fields.
const (
	DefaultVHost           = "/"
	DefaultMaxConnections  = 4
	DefaultHeartBeat       = 10 * time.Second
	DefaultConnectTimeout  = 10 * time.Second
	DefaultReceiptTimeout  = 10 * time.Second
	DefaultReconnectWait   = time.Second
	DefaultReconnectJitter = 100 * time.Millisecond
	// DefaultMaxReconnectWait caps the pause between rounds of failed
	// connect attempts as it doubles.
	DefaultMaxReconnectWait = 10 * time.Second
	// MinTimeout is the least heart-beat interval, connect timeout and
	// receipt timeout a Config may set.
	MinTimeout = time.Second
	// MaxConnections bounds Config.Connections.
	MaxConnections = 64
)

// Config is the configuration of a stomp integration: Elastic Path's
// {"addresses","destination","username","password"}, plus options whose zero
// values keep that behaviour.
type Config struct {
	// Addresses are the broker's addresses, tried in turn (see
	// ParseAddresses): stomp://host:port, stomp+ssl://host:port (Amazon MQ),
	// tcp://, ssl://, host:port, or failover:(a,b). At least one.
	Addresses []string `json:"addresses"`
	// Destination is where every event goes: "/queue/orders",
	// "/topic/orders", or a broker-specific form ("/exchange/x/key" on
	// RabbitMQ). Required.
	Destination string `json:"destination"`
	// Username and Password are the STOMP login and passcode. Empty means
	// no login header.
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	// VHost is the STOMP host header; RabbitMQ reads it as the virtual host.
	// Empty means "/" (go-stomp itself would send the dialled host, which
	// RabbitMQ refuses).
	VHost string `json:"vhost,omitempty"`
	// Connections is how many connections the sink keeps: a connection
	// carries one send at a time, as it waits for the receipt. Zero means
	// the bus's concurrency, at most DefaultMaxConnections.
	Connections int `json:"connections,omitempty"`
	// HeartBeatSend and HeartBeatReceive are the STOMP heart-beat intervals
	// the sink offers to send and asks to receive, which detect a dead
	// connection while it is idle. Zero means DefaultHeartBeat; negative
	// turns one off; otherwise at least MinTimeout.
	//
	// A connection is given up after twice (the longer of HeartBeatReceive
	// and the broker's interval, plus 5 s) without a byte from the broker:
	// 30 s by default. The factor 2 is needed: ActiveMQ checks on a timer of
	// the interval whether it wrote anything since the last check, so its
	// heart-beats come up to twice the interval apart.
	//
	// Turn HeartBeatReceive off for a broker that answers heart-beat "0,…"
	// (sends none): go-stomp still expects them at HeartBeatReceive, and would
	// cut and redial every connection idle for that long.
	HeartBeatSend    sinks.Duration `json:"heartbeat_send,omitempty"`
	HeartBeatReceive sinks.Duration `json:"heartbeat_receive,omitempty"`
	// ConnectTimeout bounds a dial, TLS handshake and CONNECT; a broker that
	// does not answer in time counts as a failed attempt (retryable), and the
	// next address is tried. Zero means DefaultConnectTimeout; otherwise at
	// least MinTimeout.
	ConnectTimeout sinks.Duration `json:"connect_timeout,omitempty"`
	// ReceiptTimeout is how long a send waits for the broker's receipt
	// before it fails (retryable) and the connection is redialled, to the
	// next address. Zero means DefaultReceiptTimeout; otherwise at least
	// MinTimeout.
	ReceiptTimeout sinks.Duration `json:"receipt_timeout,omitempty"`
	// ReconnectWait is the pause after every address failed to connect once,
	// before the next round, and after a connection that dropped sooner than
	// ReconnectWait after it was up (a broker that accepts and drops at
	// once). The pause doubles with each such round in a row, up to
	// MaxReconnectWait. Zero means DefaultReconnectWait.
	ReconnectWait sinks.Duration `json:"reconnect_wait,omitempty"`
	// MaxReconnectWait caps the doubling pause; it is never less than
	// ReconnectWait. Zero means DefaultMaxReconnectWait.
	MaxReconnectWait sinks.Duration `json:"max_reconnect_wait,omitempty"`
	// ReconnectJitter is the most added at random to ReconnectWait, so that
	// many sinks do not redial at once. Zero means DefaultReconnectJitter;
	// negative means none.
	ReconnectJitter sinks.Duration `json:"reconnect_jitter,omitempty"`
	// MaxReconnects is how many failed connect attempts in a row (a
	// connection that dropped sooner than ReconnectWait counts as one) a
	// connection makes before it stops redialling in the background; a
	// later Publish starts it again, at most once per ReconnectWait. Zero or
	// negative means forever.
	MaxReconnects int `json:"max_reconnects,omitempty"`
	// TLS configures stomp+ssl:// and ssl:// addresses.
	TLS TLS `json:"tls,omitzero"`
	// AllowPrivateNetworks lets the sink connect to brokers at loopback,
	// private, link-local and other internal addresses. By default the
	// network guard refuses them after DNS resolution (package netguard),
	// so that an integration cannot probe the network the application runs
	// in. The bus accepts it only where the application allows private
	// networks (bus.Config.AllowPrivateNetworks).
	AllowPrivateNetworks bool `json:"allow_private_networks,omitempty"`
}

// TLS configures connections to TLS addresses. The zero value verifies the
// broker's certificate against the system roots, as Amazon MQ needs.
type TLS struct {
	// CAFile is a PEM file of certificates to trust instead of the system
	// roots (a private broker's CA): a regular file of at most MaxCAFile
	// bytes. A relative path is under the bus's path root
	// (sinks.Env.PathRoot); inside the bus it must stay within it
	// (bus.Config.PathRoot).
	CAFile string `json:"ca_file,omitempty"`
	// ServerName is the name the certificate must hold. Empty means the
	// address's host.
	ServerName string `json:"server_name,omitempty"`
	// InsecureSkipVerify accepts any certificate. For tests only: it lets
	// anyone in the middle read the events and the password.
	InsecureSkipVerify bool `json:"insecure_skip_verify,omitempty"`
}

var (
	_ sinks.Config    = Config{}
	_ sinks.Networked = Config{}
	_ sinks.PathUser  = Config{}
)

// Type returns "stomp".
func (c Config) Type() string { return Type.Name }

// setDefaults fills the zero fields; concurrency is the bus's.
func (c *Config) setDefaults(concurrency int) {
	if c.VHost == "" {
		c.VHost = DefaultVHost
	}
	if c.Connections == 0 {
		c.Connections = min(max(concurrency, 1), DefaultMaxConnections)
	}
	if c.HeartBeatSend == 0 {
		c.HeartBeatSend = sinks.Duration(DefaultHeartBeat)
	}
	if c.HeartBeatReceive == 0 {
		c.HeartBeatReceive = sinks.Duration(DefaultHeartBeat)
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = sinks.Duration(DefaultConnectTimeout)
	}
	if c.ReceiptTimeout == 0 {
		c.ReceiptTimeout = sinks.Duration(DefaultReceiptTimeout)
	}
	if c.ReconnectWait == 0 {
		c.ReconnectWait = sinks.Duration(DefaultReconnectWait)
	}
	if c.MaxReconnectWait == 0 {
		c.MaxReconnectWait = sinks.Duration(DefaultMaxReconnectWait)
	}
	c.MaxReconnectWait = max(c.MaxReconnectWait, c.ReconnectWait)
	if c.ReconnectJitter == 0 {
		c.ReconnectJitter = sinks.Duration(DefaultReconnectJitter)
	}
	if c.MaxReconnects == 0 {
		c.MaxReconnects = -1
	}
}

// Validate returns every problem of the configuration at once, each naming
// its JSON field.
func (c Config) Validate() error {
	var p field.Problems
	if len(c.Addresses) == 0 {
		p.Add("addresses", "at least one address required")
	} else if _, err := ParseAddresses(c.Addresses); err != nil {
		p.Merge("addresses", err)
	}
	switch {
	case c.Destination == "":
		p.Add("destination", "required")
	case hasControl(c.Destination):
		p.Add("destination", "must not contain control characters")
	case len(c.Destination) > 1024:
		p.Add("destination", "must be at most 1024 bytes")
	}
	// CONNECT frames are not escaped (STOMP 1.2): a line break would end
	// the header and let the value forge others.
	for _, f := range []struct{ name, value string }{
		{"username", c.Username}, {"password", c.Password}, {"vhost", c.VHost},
	} {
		if hasControl(f.value) {
			p.Add(f.name, "must not contain control characters")
		}
	}
	if c.Password != "" && c.Username == "" {
		p.Add("username", "required with password")
	}
	if c.Connections < 0 || c.Connections > MaxConnections {
		p.Add("connections", "must be between 1 and %d (0: default)", MaxConnections)
	}
	for _, f := range []struct {
		name string
		d    sinks.Duration
	}{
		{"connect_timeout", c.ConnectTimeout}, {"receipt_timeout", c.ReceiptTimeout},
	} {
		switch {
		case f.d < 0:
			p.Add(f.name, "must not be negative")
		case f.d > 0 && f.d.D() < MinTimeout:
			p.Add(f.name, "must be at least %s (0: default)", MinTimeout)
		}
	}
	for _, f := range []struct {
		name string
		d    sinks.Duration
	}{
		{"heartbeat_send", c.HeartBeatSend}, {"heartbeat_receive", c.HeartBeatReceive},
	} {
		if f.d > 0 && f.d.D() < MinTimeout {
			p.Add(f.name, "must be at least %s (0: default, negative: off)", MinTimeout)
		}
	}
	for _, f := range []struct {
		name string
		d    sinks.Duration
	}{
		{"reconnect_wait", c.ReconnectWait}, {"max_reconnect_wait", c.MaxReconnectWait},
	} {
		if f.d < 0 {
			p.Add(f.name, "must not be negative")
		}
	}
	if strings.ContainsRune(c.TLS.CAFile, 0) {
		p.Add("tls.ca_file", "must not contain a NUL character")
	}
	if c.TLS.ServerName != "" && hasControl(c.TLS.ServerName) {
		p.Add("tls.server_name", "must not contain control characters")
	}
	return p.Err()
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

// Masked returns a copy with the password replaced by sinks.Mask.
func (c Config) Masked() sinks.Config {
	c.Password = sinks.Mask(c.Password)
	c.Addresses = append([]string(nil), c.Addresses...)
	return c
}

// UsesPrivateNetworks implements sinks.Networked.
func (c Config) UsesPrivateNetworks() bool { return c.AllowPrivateNetworks }

// Hosts implements sinks.Networked: the host of every address, failover
// members included, each named by its entry ("addresses[1]").
func (c Config) Hosts() []sinks.Target {
	var out []sinks.Target
	for i, s := range c.Addresses {
		members, err := parseEntry(s)
		if err != nil {
			continue // Validate reports it
		}
		for _, a := range members {
			out = append(out, sinks.Target{Field: "addresses[" + strconv.Itoa(i) + "]", Value: a.Host})
		}
	}
	return out
}

// Paths implements sinks.PathUser: tls.ca_file, when set.
func (c Config) Paths() []sinks.Target {
	if c.TLS.CAFile == "" {
		return nil
	}
	return []sinks.Target{{Field: "tls.ca_file", Value: c.TLS.CAFile}}
}

// NewPublisher builds the sink; see New.
func (c Config) NewPublisher(env sinks.Env) (message.Publisher, error) {
	return New(c, env)
}
