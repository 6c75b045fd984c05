package file

import (
	"path/filepath"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sinkbus/sinkbus/field"
	"github.com/sinkbus/sinkbus/sinks"
)

// Fsync is when the sink forces written events to stable storage.
type Fsync string

const (
	// FsyncRotation writes each event to the operating system before Publish
	// returns and syncs a file only when it is finished. A process crash
	// loses nothing; a machine crash may lose the tail of the open files.
	FsyncRotation Fsync = "rotation"
	// FsyncBatch syncs before Publish returns, one sync shared by every
	// Publish call waiting at that moment (group commit).
	FsyncBatch Fsync = "batch"
	// FsyncEvent syncs after every event.
	FsyncEvent Fsync = "event"
)

// Defaults of Config, NewStore's export rotation.
const (
	DefaultRotateEvery       = 5 * time.Minute
	DefaultRotateBytes int64 = 50 << 20
)

// MinRotateEvery is the shortest rotate_every accepted.
const MinRotateEvery = time.Second

// Type is the "file" integration type. Importing this package registers it
// in the default registry (sinks.DefaultRegistry), so a bus without a
// registry of its own builds it from JSON too.
var Type = sinks.Type{Name: "file", Decode: sinks.DecodeInto[Config]}

func init() { sinks.Register(Type) }

// Config is the configuration of a file export: events as NDJSON files
// named {dir}/{key_prefix}/{tenant}/{epoch_ms}-data-{random}.export.
type Config struct {
	// Dir is the directory the files go to. A relative one is under the
	// bus's path root (sinks.Env.PathRoot: <data dir>/exports by default).
	// Empty means <data dir>/exports/<integration id> when the bus has a
	// data directory; without one it is required. Inside the bus it must
	// stay within the path root (bus.Config.PathRoot). One sink at a
	// time may use a directory:
	// New takes its lock (see LockDir) and fails, naming dir, while another
	// sink holds it.
	Dir string `json:"dir,omitempty"`
	// KeyPrefix is a relative path under Dir ("exports/erp"). Empty means none.
	KeyPrefix string `json:"key_prefix,omitempty"`
	// RotateEvery is the age at which a file is finished, even when idle.
	// Zero means DefaultRotateEvery.
	RotateEvery sinks.Duration `json:"rotate_every,omitempty"`
	// RotateBytes is the size a file does not grow past: an event that would
	// go over it starts a new file, and an event larger than it gets a file
	// of its own. Zero means DefaultRotateBytes.
	RotateBytes int64 `json:"rotate_bytes,omitempty"`
	// Fsync is the durability an event has when Publish returns nil. Empty
	// means FsyncRotation.
	Fsync Fsync `json:"fsync,omitempty"`

	// OnFinalized, when not nil, is called with the path of each finished
	// file, just after it got its final name: on rotation, on Close, and in
	// New for the files a previous run left open. It runs on the goroutine
	// that finished the file (sometimes a Publish call), so it must return
	// quickly; it is never called after Close has returned.
	OnFinalized func(path string) `json:"-"`
	// Lock, when not nil, is the lock on Dir that the caller took with
	// LockDir and keeps: New takes none and Close leaves it held. The s3
	// sink holds its spool this way until its last upload has ended.
	Lock *DirLock `json:"-"`
}

// Type returns "file".
func (c Config) Type() string { return Type.Name }

// Masked returns c: a file export holds no secret.
func (c Config) Masked() sinks.Config { return c }

// NewPublisher builds the sink; see New.
func (c Config) NewPublisher(env sinks.Env) (message.Publisher, error) {
	return New(c, env)
}

func (c *Config) setDefaults() {
	if c.RotateEvery == 0 {
		c.RotateEvery = sinks.Duration(DefaultRotateEvery)
	}
	if c.RotateBytes == 0 {
		c.RotateBytes = DefaultRotateBytes
	}
	if c.Fsync == "" {
		c.Fsync = FsyncRotation
	}
}

// Validate returns every problem of c at once.
func (c Config) Validate() error {
	var p field.Problems
	if strings.ContainsRune(c.Dir, 0) {
		p.Add("dir", "must not contain a NUL character")
	}
	p.Merge("key_prefix", ValidateKeyPrefix(c.KeyPrefix))
	switch d := c.RotateEvery.D(); {
	case d < 0:
		p.Add("rotate_every", "must not be negative")
	case d > 0 && d < MinRotateEvery:
		p.Add("rotate_every", "must be at least %s", MinRotateEvery)
	}
	if c.RotateBytes < 0 {
		p.Add("rotate_bytes", "must not be negative")
	}
	switch c.Fsync {
	case "", FsyncRotation, FsyncBatch, FsyncEvent:
	default:
		p.Add("fsync", "must be one of %q, %q, %q", FsyncRotation, FsyncBatch, FsyncEvent)
	}
	return p.Err()
}

// MaxKeyPrefix is the longest key_prefix accepted, in bytes.
const MaxKeyPrefix = 512

// ValidateKeyPrefix checks a key_prefix: empty, or segments separated by
// "/" made of the characters S3 calls safe (letters, digits, ! - _ . * ' ( )),
// none of them "." or "..". The same prefix names a directory and an S3 key,
// so it must be safe as both.
func ValidateKeyPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if len(prefix) > MaxKeyPrefix {
		return field.New("", "must be at most %d bytes", MaxKeyPrefix)
	}
	for _, seg := range strings.Split(prefix, "/") {
		switch seg {
		case "":
			return field.New("", "must not start or end with \"/\" nor contain \"//\"")
		case ".", "..":
			return field.New("", "must not contain \".\" or \"..\" segments")
		}
		for i := 0; i < len(seg); i++ {
			if !isKeySafe(seg[i]) {
				return field.New("", "may contain only letters, digits, \"/\" and !-_.*'()")
			}
		}
	}
	return nil
}

func isKeySafe(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!-_.*'()", c) >= 0
}

// CheckEnv reports a missing dir on a bus without a data directory.
func (c Config) CheckEnv(env sinks.Env) error {
	if c.Dir == "" && env.DataDir == "" {
		return field.New("dir", "is required when the bus has no data directory")
	}
	return nil
}

// resolve returns c with its defaults and its directory settled for env.
func (c Config) resolve(env sinks.Env) (Config, error) {
	if err := c.Validate(); err != nil {
		return c, err
	}
	c.setDefaults()
	if err := c.CheckEnv(env); err != nil {
		return c, err
	}
	if c.Dir == "" {
		c.Dir = filepath.Join(env.DataDir, "exports", PathSegment(env.IntegrationID))
	}
	c.Dir = env.Path(c.Dir)
	return c, nil
}

// Paths returns dir, when set (sinks.PathUser).
func (c Config) Paths() []sinks.Target {
	if c.Dir == "" {
		return nil
	}
	return []sinks.Target{{Field: "dir", Value: c.Dir}}
}
