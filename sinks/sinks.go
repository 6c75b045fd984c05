// Package sinks holds what every sinkbus sink shares: the failure vocabulary
// (Classify, Permanent, RetryAfter, StatusError), the metadata keys the bus
// sets on each message, the event envelope every sink sends, and the Config
// interface through which an integration builds its sink.
//
// A sink is a Watermill message.Publisher: Publish is safe for concurrent
// use, binds every network call to msg.Context(), and returns an error that
// Classify understands; Close is idempotent and flushes. The sub-packages
// (webhook, sqs, stomp, file, s3) are the built-in sinks. Each registers
// its Type in the default registry when it is imported, as database/sql
// drivers do, so a program links only the sinks it imports; sinks/all
// imports every one.
package sinks

import (
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sinkbus/sinkbus/internal/clock"
)

// Metadata keys the bus sets on every message it delivers. The message UUID
// is the event id. User metadata may not use the "sinkbus_" prefix.
const (
	MetaPrefix      = "sinkbus_"
	MetaName        = "sinkbus_name"         // event name, e.g. order.fulfilled
	MetaTenant      = "sinkbus_tenant"       // tenant, may be empty
	MetaPublishedAt = "sinkbus_published_at" // RFC 3339 with nanoseconds, UTC
	MetaReplayed    = "sinkbus_replayed"     // "true" on replayed and retried-from-rejected deliveries
	MetaAttempt     = "sinkbus_attempt"      // 1 for the first attempt of a delivery
)

// Config is the type-specific configuration of an integration. Each sink
// package has one (webhook.Config, sqs.Config, ...); users may add their own
// types with Register or Registry.Register.
type Config interface {
	// Type is the integration_type this configuration belongs to.
	Type() string
	// Validate returns every problem at once (errors.Join of *field.Error),
	// with field names relative to the configuration object ("url").
	Validate() error
	// Masked returns a copy safe to show: secrets replaced by Mask.
	Masked() Config
	// NewPublisher builds the sink. The bus calls Close on it when the
	// integration stops or changes.
	NewPublisher(env Env) (message.Publisher, error)
}

// MessagePublisher is implemented by a sink that can publish one message
// without the slice that message.Publisher's Publish takes, one allocation
// per call. The bus delivers one message at a time and calls PublishMessage
// when the sink has it. It does what Publish does with that one message.
type MessagePublisher interface {
	PublishMessage(topic string, msg *message.Message) error
}

// AttemptTimeouter is implemented by configurations whose sink has its own
// default per-attempt timeout (webhook: the configured timeout, else 30 s).
type AttemptTimeouter interface {
	AttemptTimeout() time.Duration
}

// OrderKeyer is implemented by configurations whose destination keeps order
// per key, as an SQS FIFO queue does per message group. When an integration
// sets no order key the bus uses this one (same syntax as
// bus.Integration.OrderKey), so the events of one key reach the sink one at a
// time, in publication order; events with no value for the key are ordered
// as one key of their own, as the destination groups them. An empty key
// means none.
type OrderKeyer interface {
	DefaultOrderKey() string
}

// Networked is implemented by configurations whose sink connects to hosts
// over the network. Such a sink dials through the network guard
// (package netguard), which refuses loopback, private, link-local and other
// internal addresses unless the configuration asks for them
// (allow_private_networks). The bus accepts that request only where the
// application allows it (bus.Config.AllowPrivateNetworks), so that whoever
// may create integrations cannot probe the application's network; and it
// refuses, naming the field, a configured literal internal address (or
// localhost) that the guard would refuse at every delivery.
type Networked interface {
	// Hosts returns the hosts the sink connects to as configured (names or
	// literal addresses), each with the field that names it.
	Hosts() []Target
	// UsesPrivateNetworks reports whether the configuration asks to reach
	// internal addresses.
	UsesPrivateNetworks() bool
}

// PathUser is implemented by configurations that name files or directories
// of the machine (a file sink's dir, a CA file). A relative path is taken
// under Env.PathRoot (see Env.Path). The bus confines the paths to its path
// root (bus.Config.PathRoot), checking them when it creates or updates an
// integration, unless the application's code said otherwise
// (bus.Integration.UnconfinedPaths).
type PathUser interface {
	// Paths returns the paths the configuration names, as configured, each
	// with the field that names it; empty ones are left out.
	Paths() []Target
}

// Target is a host or a path that a configuration names, with its field
// relative to the configuration ("url", "addresses[1]", "tls.ca_file").
type Target struct {
	Field string
	Value string
}

// EnvChecker is implemented by configurations that can be valid on their
// own and still unusable on a given bus (a file sink with no dir on a bus
// without a data directory). The bus calls CheckEnv, with the Env it would
// build the sink with, whenever it validates an integration, so that the
// problem is refused at creation rather than found at the first start.
// Field names are relative to the configuration, as Validate's.
type EnvChecker interface {
	CheckEnv(env Env) error
}

// Purger is implemented by configurations whose sink keeps state of its own
// in Env.DataDir that would outlive the integration (the s3 sink's files
// waiting for upload). The bus calls Purge, with the Env it would build the
// sink with, when the integration is deleted, so that a new integration with
// the same id does not inherit it.
type Purger interface {
	Purge(env Env) error
}

// Env is what the bus gives a sink when it builds it.
type Env struct {
	// IntegrationID names the integration the sink delivers for: its ref,
	// "<tenant>/<id>" for a tenant's integration ("acme/erp-sync"), its id
	// for the application's. A sink that names a file after it escapes the
	// '/' (file.PathSegment).
	IntegrationID string
	// Logger is never nil. The bus's carries the integration_id.
	Logger watermill.LoggerAdapter
	// Clock is never nil.
	Clock clock.Clock
	// Concurrency is how many Publish calls the bus may make at once; size
	// connection pools for it.
	Concurrency int
	// DataDir is a directory the sink owns across restarts (file exports,
	// pending uploads); empty when the bus runs in memory.
	DataDir string
	// PathRoot is where relative paths of the configuration start (see
	// Path); empty means the working directory.
	PathRoot string
	// Log writes an entry into the integration's log, the one the management
	// API shows, for what the sink sees outside a delivery's own result (an
	// upload that failed, a broker connection lost). Reasons must not hold
	// secrets. Never nil after Defaults.
	Log func(action, reason string)
}

// Defaults fills the zero fields of env.
func (env Env) Defaults() Env {
	if env.Logger == nil {
		env.Logger = watermill.NopLogger{}
	}
	env.Clock = clock.OrReal(env.Clock)
	if env.Concurrency <= 0 {
		env.Concurrency = 1
	}
	if env.Log == nil {
		env.Log = func(string, string) {}
	}
	return env
}

// Mask hides a secret for display, keeping its last four characters
// ("****PSYQ") when it is long enough for that to reveal little.
func Mask(secret string) string {
	if secret == "" {
		return ""
	}
	if len(secret) < 12 {
		return "****"
	}
	return "****" + secret[len(secret)-4:]
}

// IsMasked reports whether s is a value Mask produced; updates that send a
// masked value back keep the stored secret.
func IsMasked(s string) bool {
	return len(s) >= 4 && s[:4] == "****"
}
