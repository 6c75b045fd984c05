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
package s3

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sort"
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

	"github.com/sinkbus/sinkbus/internal/clock"
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

// attemptTimeout bounds one upload, so that a stalled connection cannot
// hold the queue.
const attemptTimeout = 10 * time.Minute

// Publisher is the S3 sink, a Watermill message.Publisher.
type Publisher struct {
	cfg      Config
	env      sinks.Env
	log      watermill.LoggerAdapter
	spool    string
	files    *file.Publisher
	uploader *manager.Uploader

	mu       sync.Mutex
	queue    []string // finished files to upload, oldest first
	queued   map[string]bool
	draining bool
	wake     chan struct{} // a file was queued, or draining began

	ctx    context.Context // the uploader's; cancelled when a drain times out
	cancel context.CancelFunc
	done   chan struct{} // closed when the uploader has returned

	closeOnce sync.Once
	closeErr  error
}

// New returns an S3 sink. It queues the finished files a previous run left
// in the spool, completes the ones it left open (see file.New), and starts
// uploading.
func New(cfg Config, env sinks.Env) (*Publisher, error) {
	env = env.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = sinks.Duration(DefaultDrainTimeout)
	}
	spool := cfg.SpoolDir
	if spool == "" {
		if env.DataDir == "" {
			return nil, sinks.Field("spool_dir", "is required when the bus has no data directory")
		}
		spool = filepath.Join(env.DataDir, "s3-spool", file.PathSegment(env.IntegrationID))
	}
	client, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	p := &Publisher{
		cfg:   cfg,
		env:   env,
		log:   env.Logger.With(watermill.LogFields{"sink": "s3", "integration_id": env.IntegrationID, "bucket": cfg.Bucket}),
		spool: spool,
		uploader: manager.NewUploader(client, func(u *manager.Uploader) {
			u.PartSize = 16 << 20
			u.Concurrency = 2
		}),
		queued: make(map[string]bool),
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())

	left, err := finishedFiles(spool)
	if err != nil {
		p.cancel()
		return nil, err
	}
	for _, path := range left {
		p.enqueue(path)
	}
	fc := cfg.fileConfig()
	fc.Dir = spool
	fc.OnFinalized = p.enqueue
	p.files, err = file.New(fc, env)
	if err != nil {
		p.cancel()
		return nil, err
	}
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
	return s3.NewFromConfig(awsCfg, func(o *s3.Options) {
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

// Shutdown stops accepting events, finishes the open files and waits until
// every finished file is uploaded or ctx is done. Files not uploaded by
// then stay in the spool for the next start, and Shutdown says how many.
// Only the first call does anything; later calls return its result.
func (p *Publisher) Shutdown(ctx context.Context) error {
	p.closeOnce.Do(func() {
		err := p.files.Close()
		p.mu.Lock()
		p.draining = true
		p.mu.Unlock()
		p.signal()
		select {
		case <-p.done:
		case <-ctx.Done():
			p.cancel()
			<-p.done
		}
		p.cancel()
		if n := p.Pending(); n > 0 {
			err = errors.Join(err, fmt.Errorf("sinkbus: s3: %d files not uploaded yet, kept in %s for the next start: %w",
				n, p.spool, context.Cause(ctx)))
		}
		p.closeErr = err
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
		draining := p.draining
		p.mu.Unlock()
		if draining {
			return "", false
		}
		select {
		case <-p.wake:
		case <-p.ctx.Done():
			return "", false
		}
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
// uploaded: a file is never dropped while it exists.
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
		fields := watermill.LogFields{"key": key, "attempt": attempt, "retry_in": wait.String(), "class": class.String()}
		var ue *UploadError
		if errors.As(err, &ue) {
			fields["aws_error_code"] = ue.Code
			fields["http_status"] = ue.StatusCode
		}
		p.log.Error("Could not upload export file; the file stays in the spool and is retried", err, fields)
		if p.cfg.OnUploadError != nil {
			p.cfg.OnUploadError(key, err)
		}
		if clock.Sleep(p.ctx, p.env.Clock, wait) != nil {
			return
		}
	}
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
	if p.cfg.OnUploaded != nil {
		p.cfg.OnUploaded(key)
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
	sort.SliceStable(paths, func(i, j int) bool { return filepath.Base(paths[i]) < filepath.Base(paths[j]) })
	return paths, nil
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

// uploadError classifies err: permanent for the refusals above and for
// other 4XX statuses except 408 and 429; retryable otherwise.
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
	case permanentCodes[ue.Code]:
		return sinks.Permanent(ue)
	case ue.StatusCode == http.StatusRequestTimeout, ue.StatusCode == http.StatusTooManyRequests:
		return ue
	case ue.StatusCode >= 400 && ue.StatusCode < 500:
		return sinks.Permanent(ue)
	}
	return ue
}
