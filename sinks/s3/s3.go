// Package s3 is NewStore's S3 export as a sink: events are spooled as NDJSON
// files by the file sink and each finished file is uploaded to
//
//	{bucket}/{key_prefix}/{tenant}/{epoch_ms}-data-{random}.export
//
// Publish returns once the event is in the spool (synced to disk under the
// default policy), so the bus counts it delivered then; the upload follows
// within RotateEvery (5 minutes by default). An uploader goroutine uploads
// the files one at a time, oldest first, retries failures with backoff for
// as long as it takes, and removes a local file only after S3 confirmed its
// upload. Files left by a previous run are uploaded on start.
//
// What the uploader sees goes into the integration's log (sinks.Env.Log),
// collapsed so that a failure that lasts does not flood it: upload_failed at
// the first failed attempt, when the failure changes, and every
// FailureLogInterval while it lasts; upload_recovered when uploads work
// again; upload_pending when the sink closes with files still waiting.
package s3

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/cenkalti/backoff/v4"

	"github.com/sinkbus/sinkbus/internal/awsclient"
	"github.com/sinkbus/sinkbus/netguard"
	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/file"
)

// Upload retry timing: exponential from RetryInitial to RetryMax for
// failures that may pass; RetryPermanent between attempts after a refusal
// (wrong credentials, missing bucket), which only a change on the bucket's
// side fixes.
const (
	RetryInitial   = time.Second
	RetryMax       = 5 * time.Minute
	RetryPermanent = 5 * time.Minute
)

// FailureLogInterval is how often an upload failure that goes on is
// written into the integration log again; every attempt goes to the Logger.
const FailureLogInterval = time.Hour

// Actions the sink writes into the integration log.
const (
	ActionUploadFailed    = "upload_failed"
	ActionUploadRecovered = "upload_recovered"
	ActionUploadPending   = "upload_pending"
)

// attemptTimeout bounds one upload, so that a stalled connection cannot
// hold the queue.
const attemptTimeout = 10 * time.Minute

// Publisher is the S3 sink, a Watermill message.Publisher.
type Publisher struct {
	cfg      Config
	env      sinks.Env
	log      watermill.LoggerAdapter
	spool    string
	lock     *file.DirLock // held until the uploader has returned
	files    *file.Publisher
	uploader *manager.Uploader

	mu     sync.Mutex
	queue  []string // finished files to upload, oldest first
	queued map[string]bool
	wake   chan struct{} // a file was queued

	drain  chan struct{}   // closed when Shutdown begins
	ctx    context.Context // the uploader's; cancelled when a drain times out
	cancel context.CancelFunc
	done   chan struct{} // closed when the uploader has returned

	failing failureStreak // the uploader's own

	closeOnce sync.Once
	closeErr  error
}

// New returns an S3 sink. It takes the spool's lock, completes the files a
// previous run left open (see file.New), queues every finished file it
// finds there, oldest first, and starts uploading. While another sink holds
// the spool it fails with a *field.Error for "spool_dir".
func New(cfg Config, env sinks.Env) (*Publisher, error) {
	env = env.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = sinks.Duration(DefaultDrainTimeout)
	}
	if err := cfg.CheckEnv(env); err != nil {
		return nil, err
	}
	spool, _ := cfg.spoolDir(env)
	client, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	lock, err := file.LockDir(spool)
	if err != nil {
		return nil, file.DirError("spool_dir", err, env)
	}
	p := &Publisher{
		cfg:   cfg,
		env:   env,
		log:   env.Logger.With(watermill.LogFields{"sink": "s3", "bucket": cfg.Bucket}),
		spool: spool,
		lock:  lock,
		uploader: manager.NewUploader(client, func(u *manager.Uploader) {
			u.PartSize = 16 << 20
			u.Concurrency = 2
		}),
		queued: make(map[string]bool),
		wake:   make(chan struct{}, 1),
		drain:  make(chan struct{}),
		done:   make(chan struct{}),
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())

	fc := cfg.fileConfig()
	fc.Dir = spool
	fc.Lock = lock
	fc.OnFinalized = p.enqueue
	if p.files, err = file.New(fc, env); err != nil {
		p.cancel()
		_ = lock.Unlock()
		return nil, err
	}
	left, err := finishedFiles(spool)
	if err != nil {
		p.cancel()
		_ = p.files.Close()
		_ = lock.Unlock()
		return nil, err
	}
	for _, path := range left {
		p.enqueue(path) // the files file.New completed are queued already
	}
	p.mu.Lock()
	sortOldestFirst(p.queue)
	p.mu.Unlock()
	if len(left) > 0 {
		p.log.Info("Uploading files left in the spool by a previous run", watermill.LogFields{"files": len(left)})
	}
	go p.run()
	return p, nil
}

func newClient(cfg Config) (*s3.Client, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if cfg.Region != "" {
		opts = append(opts, awsconfig.WithRegion(cfg.Region))
	}
	if cfg.AccessKeyID != "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, "")))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(context.Background(), opts...)
	if err != nil {
		return nil, fmt.Errorf("sinkbus: s3: load AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = "us-east-1"
	}
	httpClient, err := awsclient.HTTPClient(awsCfg, cfg.AllowPrivateNetworks, nil)
	if err != nil {
		return nil, err
	}
	return s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		o.HTTPClient = httpClient
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle
		o.Retryer = aws.NopRetryer{} // the uploader retries, with backoff on the bus's clock
	}), nil
}

// Spool returns the directory files wait in until they are uploaded.
func (p *Publisher) Spool() string { return p.spool }

// Publish spools the messages; see file.Publisher.Publish.
func (p *Publisher) Publish(topic string, msgs ...*message.Message) error {
	return p.files.Publish(topic, msgs...)
}

// Pending returns how many finished files wait for their upload.
func (p *Publisher) Pending() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.queue)
}

// Close is Shutdown bounded by Config.DrainTimeout.
func (p *Publisher) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.DrainTimeout.D())
	defer cancel()
	return p.Shutdown(ctx)
}

// Shutdown stops accepting events, finishes the open files and gives each
// file waiting for upload one more attempt, oldest first, until one fails
// or ctx is done; it does not wait for a retry. Files not uploaded stay in
// the spool, safe, and the next sink on the spool uploads them: that is no
// error. Pending tells how many, and the integration log says so
// (upload_pending). The error reports only what the spool could not do
// (see file.Publisher.Close). Only the first call does anything; later
// calls return its result.
func (p *Publisher) Shutdown(ctx context.Context) error {
	p.closeOnce.Do(func() {
		err := p.files.Close()
		close(p.drain)
		select {
		case <-p.done:
		case <-ctx.Done():
			p.cancel()
			<-p.done
		}
		p.cancel()
		if n := p.Pending(); n > 0 {
			p.log.Info("Files wait in the spool for their upload on the next start", watermill.LogFields{"files": n, "spool": p.spool})
			p.env.Log(ActionUploadPending, fmt.Sprintf(
				"%d export %s in the spool for upload to bucket %s; they upload when the integration starts again.",
				n, plural(n, "file waits", "files wait"), p.cfg.Bucket))
		}
		p.closeErr = errors.Join(err, p.lock.Unlock())
	})
	return p.closeErr
}

func (p *Publisher) enqueue(path string) {
	p.mu.Lock()
	if !p.queued[path] {
		p.queued[path] = true
		p.queue = append(p.queue, path)
	}
	p.mu.Unlock()
	p.signal()
}

func (p *Publisher) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// next returns the oldest queued file; false when draining with nothing
// left, or when cancelled.
func (p *Publisher) next() (string, bool) {
	for {
		p.mu.Lock()
		if len(p.queue) > 0 {
			path := p.queue[0]
			p.mu.Unlock()
			return path, true
		}
		p.mu.Unlock()
		if p.draining() {
			return "", false
		}
		select {
		case <-p.wake:
		case <-p.drain:
		case <-p.ctx.Done():
			return "", false
		}
	}
}

func (p *Publisher) draining() bool {
	select {
	case <-p.drain:
		return true
	default:
		return false
	}
}

func (p *Publisher) dequeue(path string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.queued, path)
	if len(p.queue) > 0 && p.queue[0] == path {
		p.queue[0] = ""
		p.queue = p.queue[1:]
	}
}

// run uploads the queued files in order, retrying each until it is
// uploaded: a file is never dropped while it exists. Once draining, a
// failed attempt ends it: the files wait for the next start.
func (p *Publisher) run() {
	defer close(p.done)
	b := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(RetryInitial),
		backoff.WithMaxInterval(RetryMax),
		backoff.WithMaxElapsedTime(0),
		backoff.WithClockProvider(p.env.Clock),
	)
	for attempt := 1; ; attempt++ {
		path, ok := p.next()
		if !ok {
			return
		}
		key := p.key(path)
		err := p.upload(path, key)
		if err == nil || errors.Is(err, fs.ErrNotExist) {
			if err != nil {
				p.log.Error("A spooled file disappeared before its upload", err, watermill.LogFields{"key": key})
			}
			p.dequeue(path)
			if err == nil {
				p.recovered()
				if p.cfg.OnUploaded != nil {
					p.cfg.OnUploaded(key)
				}
			}
			b.Reset()
			attempt = 0
			continue
		}
		if p.ctx.Err() != nil {
			return // the drain timed out during the attempt
		}
		wait := b.NextBackOff()
		class, _ := sinks.Classify(err)
		if class == sinks.ClassPermanent {
			wait = max(wait, RetryPermanent)
		}
		draining := p.draining()
		fields := watermill.LogFields{"key": key, "attempt": attempt, "class": class.String()}
		if !draining {
			fields["retry_in"] = wait.String()
		}
		var ue *UploadError
		if errors.As(err, &ue) {
			fields["aws_error_code"] = ue.Code
			fields["http_status"] = ue.StatusCode
		}
		p.log.Error("Could not upload export file; the file stays in the spool and is retried", err, fields)
		p.failed(key, err, class, wait, draining)
		if p.cfg.OnUploadError != nil {
			p.cfg.OnUploadError(key, err)
		}
		if draining || !p.sleep(wait) {
			return
		}
	}
}

// sleep waits d on the clock; a drain cuts it short for one last attempt.
// It returns false when the uploader is cancelled.
func (p *Publisher) sleep(d time.Duration) bool {
	t := p.env.Clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return true
	case <-p.drain:
		return true
	case <-p.ctx.Done():
		return false
	}
}

// failureStreak is the run of failed attempts since the last upload, as the
// integration log has been told about it.
type failureStreak struct {
	attempts int
	since    time.Time
	kind     string    // class and code of the failure last logged
	logged   time.Time // when it was logged
}

// failed writes a failed attempt into the integration log when it is the
// first of a streak, differs from the one logged, or FailureLogInterval
// passed since.
func (p *Publisher) failed(key string, err error, class sinks.Class, wait time.Duration, draining bool) {
	f := &p.failing
	now := p.env.Clock.Now()
	f.attempts++
	if f.attempts == 1 {
		f.since = now
	}
	kind, summary := describe(err, class)
	if f.attempts > 1 && kind == f.kind && now.Sub(f.logged) < FailureLogInterval {
		return
	}
	f.kind, f.logged = kind, now
	var reason strings.Builder
	if f.attempts > 1 {
		fmt.Fprintf(&reason, "Uploads still fail (%d attempts since %s). ", f.attempts, f.since.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(&reason, "Could not upload %s to bucket %s: %s.", key, p.cfg.Bucket, summary)
	if class == sinks.ClassPermanent {
		reason.WriteString(" Retries cannot fix this until the credentials, the bucket or its policy change.")
	}
	n := p.Pending()
	fmt.Fprintf(&reason, " %d export %s in the spool", n, plural(n, "file waits", "files wait"))
	if draining {
		reason.WriteString(" for the next start.")
	} else {
		fmt.Fprintf(&reason, "; next attempt in %s.", wait)
	}
	p.env.Log(ActionUploadFailed, reason.String())
}

// recovered ends a failure streak with an upload that worked.
func (p *Publisher) recovered() {
	f := &p.failing
	if f.attempts == 0 {
		return
	}
	p.env.Log(ActionUploadRecovered, fmt.Sprintf("Uploads to bucket %s work again after %d failed %s since %s; %d export %s in the spool.",
		p.cfg.Bucket, f.attempts, plural(f.attempts, "attempt", "attempts"), f.since.UTC().Format(time.RFC3339),
		p.Pending(), plural(p.Pending(), "file waits", "files wait")))
	*f = failureStreak{}
}

// describe returns what kind of failure err is (its class and AWS code, to
// collapse repeats) and a summary for the integration log, without secrets:
// the SDK's errors name the request, never the credentials.
func describe(err error, class sinks.Class) (kind, summary string) {
	var ue *UploadError
	if !errors.As(err, &ue) {
		return class.String(), fmt.Sprintf("%v (%s)", err, class)
	}
	if ue.Code != "" || ue.StatusCode != 0 {
		summary = ue.Code
		if ue.StatusCode != 0 {
			summary = strings.TrimSpace(fmt.Sprintf("%s (HTTP %d)", ue.Code, ue.StatusCode))
		}
		return class.String() + "/" + ue.Code, fmt.Sprintf("%s, %s", summary, class)
	}
	cause := ue.Err.Error()
	var opErr *net.OpError
	switch {
	case errors.As(ue.Err, &opErr):
		cause = opErr.Error()
	case errors.Is(ue.Err, context.DeadlineExceeded):
		cause = "timed out"
	}
	return class.String(), fmt.Sprintf("no answer from the store (%s), %s", cause, class)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// key is the object key of a spooled file: its path relative to the spool.
func (p *Publisher) key(path string) string {
	rel, err := filepath.Rel(p.spool, path)
	if err != nil {
		return filepath.ToSlash(path)
	}
	return filepath.ToSlash(rel)
}

// upload uploads one file and removes it once S3 confirmed the upload.
func (p *Publisher) upload(path, key string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(p.ctx, attemptTimeout)
	defer cancel()
	// An *os.File is seekable: the SDK can sign its payload over plain http
	// and upload the parts of a large file without buffering them.
	_, err = p.uploader.Upload(ctx, &s3.PutObjectInput{
		Bucket:      aws.String(p.cfg.Bucket),
		Key:         aws.String(key),
		Body:        f,
		ContentType: aws.String("application/x-ndjson"),
	})
	if err != nil {
		return uploadError(p.cfg.Bucket, key, err)
	}
	f.Close()
	if err := os.Remove(path); err != nil {
		// Uploaded all the same: a re-upload on the next start writes the same object.
		p.log.Error("Could not remove an uploaded file from the spool", err, watermill.LogFields{"key": key})
	} else {
		p.log.Debug("Export file uploaded", watermill.LogFields{"key": key})
	}
	return nil
}

// finishedFiles returns the finished files under spool, oldest first.
func finishedFiles(spool string) ([]string, error) {
	var paths []string
	err := filepath.WalkDir(spool, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == spool && errors.Is(err, fs.ErrNotExist) {
				return filepath.SkipDir
			}
			return err
		}
		if d.Type().IsRegular() && file.FileNamePattern.MatchString(d.Name()) {
			paths = append(paths, path)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sinkbus: s3: read spool %s: %w", spool, err)
	}
	sortOldestFirst(paths)
	return paths, nil
}

// sortOldestFirst sorts spooled files by name, which starts with the time.
func sortOldestFirst(paths []string) {
	sort.SliceStable(paths, func(i, j int) bool { return filepath.Base(paths[i]) < filepath.Base(paths[j]) })
}

// UploadError is a failed upload attempt.
type UploadError struct {
	Bucket, Key string
	// Code is the AWS error code ("SignatureDoesNotMatch"); empty when no
	// response came (network error, timeout).
	Code string
	// StatusCode is the HTTP status; zero when no response came.
	StatusCode int
	Err        error
}

// Error says which object failed, with the AWS error code and HTTP status
// when a response came, then the SDK's error. It holds no credentials.
func (e *UploadError) Error() string {
	msg := fmt.Sprintf("sinkbus: s3: upload s3://%s/%s", e.Bucket, e.Key)
	if e.Code != "" {
		msg += ": " + e.Code
	}
	if e.StatusCode != 0 {
		msg += fmt.Sprintf(" (HTTP %d)", e.StatusCode)
	}
	return msg + ": " + e.Err.Error()
}

// Unwrap returns the SDK's error.
func (e *UploadError) Unwrap() error { return e.Err }

// permanentCodes are refusals that no retry of the same request fixes.
var permanentCodes = map[string]bool{
	"AccessDenied":                 true,
	"AccountProblem":               true,
	"AllAccessDisabled":            true,
	"AuthorizationHeaderMalformed": true,
	"InvalidAccessKeyId":           true,
	"InvalidBucketName":            true,
	"InvalidObjectState":           true,
	"NoSuchBucket":                 true,
	"PermanentRedirect":            true,
	"SignatureDoesNotMatch":        true,
}

// uploadError classifies err: permanent for the refusals above, for an
// endpoint the network guard refuses and for other 4XX statuses except 408
// and 429; retryable otherwise.
func uploadError(bucket, key string, err error) error {
	ue := &UploadError{Bucket: bucket, Key: key, Err: err}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		ue.Code = apiErr.ErrorCode()
	}
	var respErr *awshttp.ResponseError
	if errors.As(err, &respErr) {
		ue.StatusCode = respErr.HTTPStatusCode()
	}
	switch {
	case permanentCodes[ue.Code], errors.Is(err, netguard.ErrBlocked):
		return sinks.Permanent(ue)
	case ue.StatusCode == http.StatusRequestTimeout, ue.StatusCode == http.StatusTooManyRequests:
		return ue
	case ue.StatusCode >= 400 && ue.StatusCode < 500:
		return sinks.Permanent(ue)
	}
	return ue
}
