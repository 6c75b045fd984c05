package s3

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sinkbus/sinkbus/field"
	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/file"
)

// Type is the "s3" integration type. Importing this package registers it
// in the default registry (sinks.DefaultRegistry), so a bus without a
// registry of its own builds it from JSON too.
var Type = sinks.Type{Name: "s3", Decode: sinks.DecodeInto[Config]}

func init() { sinks.Register(Type) }

// DefaultDrainTimeout is how long Close waits for pending uploads at most.
// Short, because the bus stops an integration (stop, update, delete, close)
// under a lock that holds every other management call meanwhile, and a file
// not uploaded by then loses nothing: it waits in the spool.
const DefaultDrainTimeout = 5 * time.Second

// Config is an S3 export, NewStore's s3_parameters plus the file rotation
// settings and an endpoint for S3-compatible stores. Objects are named
// {bucket}/{key_prefix}/{tenant}/{epoch_ms}-data-{random}.export.
type Config struct {
	// AccessKeyID and SecretAccessKey are static credentials. When both are
	// empty the default AWS credential chain is used (environment, shared
	// files, web identity, instance role).
	AccessKeyID     string `json:"aws_access_key_id,omitempty"`
	SecretAccessKey string `json:"aws_secret_access_key,omitempty"`
	// Region is the bucket's region. Empty means the one the AWS
	// environment names, else us-east-1.
	Region string `json:"aws_region,omitempty"`
	// Bucket is required.
	Bucket string `json:"bucket"`
	// KeyPrefix goes before {tenant} in each key; empty means none.
	KeyPrefix string `json:"key_prefix,omitempty"`
	// Endpoint replaces AWS's endpoint ("http://127.0.0.1:7070") for
	// S3-compatible stores. Empty means AWS.
	Endpoint string `json:"endpoint,omitempty"`
	// PathStyle addresses the bucket in the path rather than the host name,
	// as most S3-compatible stores need.
	PathStyle bool `json:"path_style,omitempty"`
	// AllowPrivateNetworks lets the sink connect to loopback, private,
	// link-local and other internal addresses (a local S3-compatible store).
	// By default the network guard refuses them after DNS resolution
	// (package netguard). The bus accepts it only where the application
	// allows private networks (bus.Config.AllowPrivateNetworks).
	AllowPrivateNetworks bool `json:"allow_private_networks,omitempty"`

	// RotateEvery, RotateBytes: see file.Config (defaults 5 min, 50 MiB).
	RotateEvery sinks.Duration `json:"rotate_every,omitempty"`
	RotateBytes int64          `json:"rotate_bytes,omitempty"`
	// Fsync is when spooled events are forced to disk. Empty means
	// file.FsyncBatch: the bus counts an event delivered when Publish
	// returns, and until its file is uploaded the spool holds its only copy,
	// so it must survive a machine crash. file.FsyncRotation is faster and
	// may lose the last events of the open files if the machine crashes.
	Fsync file.Fsync `json:"fsync,omitempty"`
	// SpoolDir holds the files until they are uploaded. A relative one is
	// under the bus's path root (sinks.Env.PathRoot). Empty means
	// <data dir>/s3-spool/<integration id>; without a data directory it is
	// required. Inside the bus it must stay within the path root
	// (bus.Config.PathRoot). One sink at a time may use a spool directory: New takes its
	// lock (file.LockDir) and fails, naming spool_dir, while another holds it.
	SpoolDir string `json:"spool_dir,omitempty"`
	// DrainTimeout bounds how long Close waits for pending uploads. Close
	// gives each waiting file one more attempt and stops at the first that
	// fails, so it waits this long only for a store that does not answer.
	// The files left stay in the spool and are uploaded on the next start.
	// Zero means DefaultDrainTimeout.
	DrainTimeout sinks.Duration `json:"drain_timeout,omitempty"`

	// OnUploaded, when not nil, is called with each object key uploaded,
	// after the local file is removed.
	OnUploaded func(key string) `json:"-"`
	// OnUploadError, when not nil, is called after each failed upload
	// attempt, with an error that errors.As finds an *UploadError in and
	// that sinks.Classify calls permanent for a refusal no retry fixes
	// (wrong credentials, missing bucket). The file stays and is retried.
	OnUploadError func(key string, err error) `json:"-"`
}

// Type returns "s3".
func (c Config) Type() string { return Type.Name }

// Masked returns c with the credentials masked ("****PSYQ").
func (c Config) Masked() sinks.Config {
	c.AccessKeyID = sinks.Mask(c.AccessKeyID)
	c.SecretAccessKey = sinks.Mask(c.SecretAccessKey)
	return c
}

// UsesPrivateNetworks implements sinks.Networked.
func (c Config) UsesPrivateNetworks() bool { return c.AllowPrivateNetworks }

// Hosts implements sinks.Networked: the endpoint's host; none for AWS's
// own endpoints.
func (c Config) Hosts() []sinks.Target {
	if u, err := url.Parse(c.Endpoint); err == nil && u.Hostname() != "" {
		return []sinks.Target{{Field: "endpoint", Value: u.Hostname()}}
	}
	return nil
}

// NewPublisher builds the sink; see New.
func (c Config) NewPublisher(env sinks.Env) (message.Publisher, error) {
	return New(c, env)
}

var (
	bucketName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]{1,61}[a-zA-Z0-9]$`)
	regionName = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)
)

// Validate returns every problem of c at once.
func (c Config) Validate() error {
	var p field.Problems
	switch {
	case c.Bucket == "":
		p.Add("bucket", "is required")
	case !bucketName.MatchString(c.Bucket):
		// Underscores and capitals: legacy us-east-1 names, as in NewStore's examples.
		p.Add("bucket", "must be 3 to 63 letters, digits, '.', '-' or '_', starting and ending with a letter or digit")
	}
	switch {
	case c.AccessKeyID != "" && c.SecretAccessKey == "":
		p.Add("aws_secret_access_key", "is required with aws_access_key_id")
	case c.AccessKeyID == "" && c.SecretAccessKey != "":
		p.Add("aws_access_key_id", "is required with aws_secret_access_key")
	}
	if c.Region != "" && !regionName.MatchString(c.Region) {
		p.Add("aws_region", "must be a region name such as \"us-east-1\"")
	}
	if c.Endpoint != "" {
		if rule := endpointProblem(c.Endpoint); rule != "" {
			p.Add("endpoint", "%s", rule)
		}
	}
	if strings.ContainsRune(c.SpoolDir, 0) {
		p.Add("spool_dir", "must not contain a NUL character")
	}
	if c.DrainTimeout < 0 {
		p.Add("drain_timeout", "must not be negative")
	}
	fc := c.fileConfig()
	fc.Dir = "" // checked above as spool_dir
	p = append(p, field.Errors(fc.Validate())...)
	return p.Err()
}

// endpointProblem returns what is wrong with an endpoint URL, "" if nothing.
func endpointProblem(endpoint string) string {
	u, err := url.Parse(endpoint)
	switch {
	case err != nil:
		return "must be a URL such as \"https://s3.example.com\""
	case u.Scheme != "http" && u.Scheme != "https":
		return "must be an http or https URL"
	case u.Host == "":
		return "must name a host"
	case u.User != nil:
		return "must not hold credentials"
	case u.RawQuery != "" || u.Fragment != "":
		return "must not have a query or fragment"
	}
	return ""
}

// fileConfig is the file sink that spools the events.
func (c Config) fileConfig() file.Config {
	fsync := c.Fsync
	if fsync == "" {
		fsync = file.FsyncBatch
	}
	return file.Config{
		Dir:         c.SpoolDir,
		KeyPrefix:   c.KeyPrefix,
		RotateEvery: c.RotateEvery,
		RotateBytes: c.RotateBytes,
		Fsync:       fsync,
	}
}

// CheckEnv reports a missing spool_dir on a bus without a data directory.
func (c Config) CheckEnv(env sinks.Env) error {
	if spool, _ := c.spoolDir(env); spool == "" {
		return field.New("spool_dir", "is required when the bus has no data directory")
	}
	return nil
}

// Paths returns spool_dir, when set (sinks.PathUser).
func (c Config) Paths() []sinks.Target {
	if c.SpoolDir == "" {
		return nil
	}
	return []sinks.Target{{Field: "spool_dir", Value: c.SpoolDir}}
}

// spoolDir is c's spool under env, and whether it is the default one under
// env.DataDir; "" when there is none.
func (c Config) spoolDir(env sinks.Env) (dir string, derived bool) {
	switch {
	case c.SpoolDir != "":
		return env.Path(c.SpoolDir), false
	case env.DataDir != "":
		return filepath.Join(env.DataDir, "s3-spool", file.PathSegment(env.IntegrationID)), true
	}
	return "", false
}

// Purge removes the files the integration's sink left in its spool, whose
// events were never uploaded: the bus calls it when the integration is
// deleted, so that a new integration with the same id does not upload them
// to its own bucket. The default spool (<data dir>/s3-spool/<id>) goes
// whole; a configured spool_dir loses only the export files (see
// file.RemoveFiles). It fails, matching file.ErrDirInUse, while a sink
// still uses the spool.
func (c Config) Purge(env sinks.Env) error {
	env = env.Defaults()
	spool, derived := c.spoolDir(env)
	if spool == "" {
		return nil
	}
	n, err := file.RemoveFiles(spool)
	if err == nil && derived {
		err = os.RemoveAll(spool) // the rest is the sink's own too: its lock file
	}
	if n > 0 {
		env.Logger.Info("Removed the spooled files of a deleted integration; their events were not uploaded",
			watermill.LogFields{"sink": "s3", "integration_id": env.IntegrationID, "files": n, "spool": spool})
	}
	if err != nil {
		return fmt.Errorf("sinkbus: s3: purge %s: %w", spool, err)
	}
	return nil
}
