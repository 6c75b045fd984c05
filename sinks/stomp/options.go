package stomp

import (
	"crypto/tls"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Options are the parts of a sink that are code rather than configuration:
// callbacks, a destination per message, a TLS configuration. The zero value
// is what the bus uses. Callbacks run on the connection's goroutine: keep
// them short.
type Options struct {
	// OnConnect is called each time a connection is up, with the address
	// (stomp://host:port, no credentials). Nil: none.
	OnConnect func(addr string)
	// OnDisconnect is called when an up connection drops, with why. Nil: none.
	OnDisconnect func(addr string, err error)
	// OnDialError is called when a connect attempt fails. Nil: none.
	OnDialError func(addr string, err error)
	// Destination returns where msg goes, given the topic Publish was called
	// with. Nil: Config.Destination for every message.
	Destination func(topic string, msg *message.Message) string
	// TLSConfig is the base of TLS connections (client certificates, custom
	// verification). Nil: one built from Config.TLS. ServerName, when empty,
	// becomes the address's host.
	TLSConfig *tls.Config
	// CustomReconnectDelay returns the pause after the given number of
	// rounds in a row (1, 2, ...) that ended without a lasting connection:
	// every address failed, or a connection dropped sooner than
	// Config.ReconnectWait. Nil: Config.ReconnectWait doubled each round up
	// to Config.MaxReconnectWait, plus up to Config.ReconnectJitter.
	CustomReconnectDelay func(rounds int) time.Duration
}

// Option sets a field of Options, as nats.go's options do.
type Option func(*Options)

// OnConnect sets Options.OnConnect.
func OnConnect(f func(addr string)) Option { return func(o *Options) { o.OnConnect = f } }

// OnDisconnect sets Options.OnDisconnect.
func OnDisconnect(f func(addr string, err error)) Option {
	return func(o *Options) { o.OnDisconnect = f }
}

// OnDialError sets Options.OnDialError.
func OnDialError(f func(addr string, err error)) Option {
	return func(o *Options) { o.OnDialError = f }
}

// WithDestination sets Options.Destination.
func WithDestination(f func(topic string, msg *message.Message) string) Option {
	return func(o *Options) { o.Destination = f }
}

// WithTLSConfig sets Options.TLSConfig.
func WithTLSConfig(c *tls.Config) Option { return func(o *Options) { o.TLSConfig = c } }

// CustomReconnectDelay sets Options.CustomReconnectDelay.
func CustomReconnectDelay(f func(rounds int) time.Duration) Option {
	return func(o *Options) { o.CustomReconnectDelay = f }
}

// WithOptions sets every field of Options at once.
func WithOptions(opts Options) Option { return func(o *Options) { *o = opts } }
