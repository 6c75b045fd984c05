package s3_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/field"
	"github.com/sinkbus/sinkbus/internal/clock"
	"github.com/sinkbus/sinkbus/internal/testenv"
	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/file"
	"github.com/sinkbus/sinkbus/sinks/s3"
)

func event(id, tenant string) *message.Message {
	msg := message.NewMessage(id, []byte(`{"order_id":"`+id+`"}`))
	msg.Metadata.Set(sinks.MetaName, "order.fulfilled")
	msg.Metadata.Set(sinks.MetaPublishedAt, "2026-01-01T00:00:00Z")
	if tenant != "" {
		msg.Metadata.Set(sinks.MetaTenant, tenant)
	}
	return msg
}

// gateway is an S3 endpoint and its root credentials.
type gateway struct {
	endpoint, access, secret string
}

// sharedGateway is the versitygw scripts/test-servers.sh starts.
func sharedGateway(t *testing.T) gateway {
	t.Helper()
	return gateway{
		endpoint: testenv.Server(t, "SINKBUS_S3_ENDPOINT"),
		access:   os.Getenv("SINKBUS_S3_ACCESS_KEY"),
		secret:   os.Getenv("SINKBUS_S3_SECRET_KEY"),
	}
}

func (g gateway) client() *awss3.Client {
	return awss3.New(awss3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(g.endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(g.access, g.secret, ""),
	})
}

func (g gateway) config(bucket string) s3.Config {
	return s3.Config{
		AccessKeyID:     g.access,
		SecretAccessKey: g.secret,
		Region:          "us-east-1",
		Bucket:          bucket,
		Endpoint:        g.endpoint,
		PathStyle:       true,
		// The gateway listens on loopback.
		AllowPrivateNetworks: true,
	}
}

// newBucket creates a bucket with a unique name, removed after the test.
func (g gateway) newBucket(t *testing.T) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "sinkbus-test-" + hex.EncodeToString(b[:])
	c := g.client()
	_, err := c.CreateBucket(context.Background(), &awss3.CreateBucketInput{Bucket: aws.String(name)})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx := context.Background()
		out, err := c.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: aws.String(name)})
		if err == nil {
			for _, o := range out.Contents {
				_, _ = c.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String(name), Key: o.Key})
			}
		}
		_, _ = c.DeleteBucket(ctx, &awss3.DeleteBucketInput{Bucket: aws.String(name)})
	})
	return name
}

// objectIDs reads an object back and returns the event ids of its lines.
func (g gateway) objectIDs(t *testing.T, bucket, key string) []string {
	t.Helper()
	out, err := g.client().GetObject(context.Background(), &awss3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	require.NoError(t, err)
	defer out.Body.Close()
	data, err := io.ReadAll(out.Body)
	require.NoError(t, err)
	require.True(t, strings.HasSuffix(string(data), "\n"), "object %s ends in a half line", key)
	var ids []string
	for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		var e sinks.Envelope
		require.NoError(t, json.Unmarshal([]byte(line), &e), "object %s: %q", key, line)
		ids = append(ids, e.ID)
	}
	return ids
}

type uploadFailure struct {
	key string
	err error
}

// logBook records what a sink writes into its integration log.
type logBook struct {
	mu      sync.Mutex
	entries []logEntry
}

type logEntry struct{ action, reason string }

func (l *logBook) log(action, reason string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = append(l.entries, logEntry{action, reason})
}

// all returns the entries, oldest first.
func (l *logBook) all() []logEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]logEntry(nil), l.entries...)
}

func (l *logBook) actions() []string {
	var out []string
	for _, e := range l.all() {
		out = append(out, e.action)
	}
	return out
}

// harness is an s3 sink on a fake clock, its uploads and failures on
// channels, its integration log in a logBook.
type harness struct {
	sink     *s3.Publisher
	clk      *clock.Fake
	log      *logBook
	uploaded chan string
	failed   chan uploadFailure
}

func newSink(t *testing.T, cfg s3.Config) *harness {
	t.Helper()
	h := &harness{
		clk:      clock.NewFake(time.Time{}),
		log:      &logBook{},
		uploaded: make(chan string, 100),
		failed:   make(chan uploadFailure, 100),
	}
	if cfg.SpoolDir == "" {
		cfg.SpoolDir = t.TempDir()
	}
	cfg.OnUploaded = func(key string) { h.uploaded <- key }
	cfg.OnUploadError = func(key string, err error) { h.failed <- uploadFailure{key, err} }
	sink, err := s3.New(cfg, sinks.Env{IntegrationID: "erp-1", Clock: h.clk, Log: h.log.log})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_ = sink.Shutdown(ctx)
	})
	h.sink = sink
	return h
}

// rotate moves the clock past rotate_every once n files are open, so that
// their timers finish them.
func (h *harness) rotate(t *testing.T, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, h.clk.BlockUntil(ctx, n))
	h.clk.Advance(file.DefaultRotateEvery)
}

// retryNow moves the clock to the uploader's next attempt.
func (h *harness) retryNow(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, h.clk.BlockUntil(ctx, 1))
	d, ok := h.clk.NextDue()
	require.True(t, ok)
	h.clk.Advance(d)
}

func (h *harness) waitUploaded(t *testing.T) string {
	t.Helper()
	select {
	case key := <-h.uploaded:
		return key
	case f := <-h.failed:
		t.Fatalf("upload of %s failed: %v", f.key, f.err)
	case <-time.After(20 * time.Second):
		t.Fatal("nothing was uploaded")
	}
	return ""
}

func (h *harness) waitFailed(t *testing.T) uploadFailure {
	t.Helper()
	select {
	case f := <-h.failed:
		return f
	case key := <-h.uploaded:
		t.Fatalf("%s was uploaded, a failure was expected", key)
	case <-time.After(20 * time.Second):
		t.Fatal("no upload failed")
	}
	return uploadFailure{}
}

// spooled returns the finished files in the spool, relative to it.
func spooled(t *testing.T, spool string) []string {
	t.Helper()
	var out []string
	require.NoError(t, filepath.WalkDir(spool, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".export") {
			rel, _ := filepath.Rel(spool, path)
			out = append(out, filepath.ToSlash(rel))
		}
		return err
	}))
	return out
}

func TestS3Sink_uploads_each_finished_file_under_its_key(t *testing.T) {
	g := sharedGateway(t)
	bucket := g.newBucket(t)
	cfg := g.config(bucket)
	cfg.KeyPrefix = "newstore/erp"
	h := newSink(t, cfg)

	want := map[string][]string{"acme": {"a1", "a2", "a3"}, "globex": {"g1", "g2"}, "default": {"d1"}}
	for _, id := range []string{"a1", "g1", "a2", "d1", "g2", "a3"} {
		tenant := map[byte]string{'a': "acme", 'g': "globex", 'd': ""}[id[0]]
		require.NoError(t, h.sink.Publish("t", event(id, tenant)))
	}
	h.rotate(t, 3)

	got := map[string][]string{}
	for range 3 {
		key := h.waitUploaded(t)
		assert.Regexp(t, `^newstore/erp/(acme|globex|default)/\d{13}-data-[a-z0-9]+\.export$`, key)
		tenant := strings.Split(key, "/")[2]
		got[tenant] = g.objectIDs(t, bucket, key)
	}
	assert.Equal(t, want, got)
	assert.Empty(t, spooled(t, h.sink.Spool()), "uploaded files are removed from the spool")
	assert.Zero(t, h.sink.Pending())

	require.NoError(t, h.sink.Close())
	assert.ErrorIs(t, h.sink.Publish("t", event("late", "acme")), sinks.ErrClosed)
}

func TestS3Sink_close_uploads_the_open_files(t *testing.T) {
	g := sharedGateway(t)
	bucket := g.newBucket(t)
	h := newSink(t, g.config(bucket))
	require.NoError(t, h.sink.Publish("t", event("e1", "acme")))
	require.NoError(t, h.sink.Close())
	key := h.waitUploaded(t)
	assert.Equal(t, []string{"e1"}, g.objectIDs(t, bucket, key))
	assert.Empty(t, spooled(t, h.sink.Spool()))
}

func TestS3Sink_refusals_are_permanent_and_keep_the_file(t *testing.T) {
	g := sharedGateway(t)
	bucket := g.newBucket(t)
	tests := []struct {
		name   string
		codes  []string // AWS's, and versitygw's where it differs
		change func(*s3.Config)
	}{
		{"wrong secret", []string{"SignatureDoesNotMatch"}, func(c *s3.Config) { c.SecretAccessKey = "not-the-secret" }},
		{"unknown access key", []string{"InvalidAccessKeyId", "XAdminUserNotFound"}, func(c *s3.Config) { c.AccessKeyID = "nobody" }},
		{"missing bucket", []string{"NoSuchBucket"}, func(c *s3.Config) { c.Bucket = bucket + "-missing" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := g.config(bucket)
			tt.change(&cfg)
			h := newSink(t, cfg)
			require.NoError(t, h.sink.Publish("t", event("e1", "acme")))
			h.rotate(t, 1)

			f := h.waitFailed(t)
			var ue *s3.UploadError
			require.ErrorAs(t, f.err, &ue)
			assert.Contains(t, tt.codes, ue.Code)
			assert.Contains(t, f.err.Error(), ue.Code)
			class, _ := sinks.Classify(f.err)
			assert.Equal(t, sinks.ClassPermanent, class)
			assert.NotContains(t, f.err.Error(), g.secret)
			assert.Equal(t, []string{f.key}, spooled(t, h.sink.Spool()), "the file stays until it is uploaded")

			// A refusal is retried slowly, and the file is never dropped.
			h.retryNow(t)
			f = h.waitFailed(t)
			require.ErrorAs(t, f.err, &ue)
			assert.Contains(t, tt.codes, ue.Code)

			// Closing gives the file one more attempt and leaves it spooled: no error.
			require.NoError(t, h.sink.Close())
			f = h.waitFailed(t)
			assert.Equal(t, []string{f.key}, spooled(t, h.sink.Spool()))
			assert.Equal(t, 1, h.sink.Pending())

			// The integration log says it once, not once per attempt, without the secret.
			assert.Equal(t, []string{s3.ActionUploadFailed, s3.ActionUploadPending}, h.log.actions())
			for _, e := range h.log.all() {
				assert.NotContains(t, e.reason, g.secret)
				assert.NotContains(t, e.reason, "not-the-secret")
			}
			assert.Contains(t, h.log.all()[0].reason, ue.Code)
			assert.Contains(t, h.log.all()[0].reason, "permanent")
		})
	}
}

func TestS3Sink_uploads_files_left_by_a_previous_run(t *testing.T) {
	g := sharedGateway(t)
	bucket := g.newBucket(t)
	spool := t.TempDir()

	// A first run cannot upload (wrong secret) and stops with its file spooled.
	bad := g.config(bucket)
	bad.SpoolDir = spool
	bad.SecretAccessKey = "not-the-secret"
	h := newSink(t, bad)
	require.NoError(t, h.sink.Publish("t", event("e1", "acme")))
	h.rotate(t, 1)
	f := h.waitFailed(t)
	require.NoError(t, h.sink.Publish("t", event("e2", "acme"))) // still open when the run stops
	require.NoError(t, h.sink.Close())
	left := spooled(t, spool)
	require.Len(t, left, 2)

	// The next run, with the right secret, uploads both before anything new.
	good := g.config(bucket)
	good.SpoolDir = spool
	h2 := newSink(t, good)
	first, second := h2.waitUploaded(t), h2.waitUploaded(t)
	assert.Equal(t, f.key, first, "oldest first")
	assert.ElementsMatch(t, left, []string{first, second})
	assert.Equal(t, []string{"e1"}, g.objectIDs(t, bucket, first))
	assert.Equal(t, []string{"e2"}, g.objectIDs(t, bucket, second))
	assert.Empty(t, spooled(t, spool))
	require.NoError(t, h2.sink.Close())
}

func TestS3Sink_uploads_a_large_file_in_parts(t *testing.T) {
	g := sharedGateway(t)
	bucket := g.newBucket(t)
	cfg := g.config(bucket)
	cfg.Fsync = file.FsyncRotation
	h := newSink(t, cfg)
	pad := strings.Repeat("x", 1<<20)
	var want []string
	for i := range 20 { // 20 MiB: more than one 16 MiB part
		id := fmt.Sprintf("e%02d", i)
		msg := message.NewMessage(id, []byte(`{"pad":"`+pad+`"}`))
		msg.Metadata.Set(sinks.MetaName, "order.fulfilled")
		require.NoError(t, h.sink.Publish("t", msg))
		want = append(want, id)
	}
	require.NoError(t, h.sink.Close())
	key := h.waitUploaded(t)
	assert.Equal(t, want, g.objectIDs(t, bucket, key))
	head, err := g.client().HeadObject(context.Background(), &awss3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	require.NoError(t, err)
	assert.True(t, strings.HasSuffix(aws.ToString(head.ETag), `-2"`), "a multipart ETag, got %s", aws.ToString(head.ETag))
}

// privateGateway runs a versitygw of its own, which the test can stop and
// start again on the same port and data.
type privateGateway struct {
	gateway
	bin, data, meta, addr string
	cmd                   *exec.Cmd
}

func newPrivateGateway(t *testing.T) *privateGateway {
	t.Helper()
	bin := testenv.Server(t, "SINKBUS_VERSITYGW_BIN")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	pg := &privateGateway{
		gateway: gateway{endpoint: "http://" + addr, access: "private", secret: "private-secret"},
		bin:     bin, data: t.TempDir(), addr: addr,
	}
	var st syscall.Statfs_t
	if syscall.Statfs(pg.data, &st) == nil && st.Type == 0x01021994 { // tmpfs keeps no xattrs
		pg.meta = t.TempDir()
	}
	pg.start(t)
	t.Cleanup(pg.stop)
	return pg
}

func (pg *privateGateway) start(t *testing.T) {
	t.Helper()
	args := []string{"--access", pg.access, "--secret", pg.secret, "--port", pg.addr, "--health", "/health", "--quiet", "posix"}
	if pg.meta != "" {
		args = append(args, "--sidecar", pg.meta)
	}
	pg.cmd = exec.Command(pg.bin, append(args, pg.data)...)
	require.NoError(t, pg.cmd.Start())
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(pg.endpoint + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		require.True(t, time.Now().Before(deadline), "versitygw did not start: %v", err)
		time.Sleep(20 * time.Millisecond) // polling a process we started, not a guess
	}
}

func (pg *privateGateway) stop() {
	if pg.cmd != nil {
		_ = pg.cmd.Process.Kill()
		_ = pg.cmd.Wait()
		pg.cmd = nil
	}
}

func TestS3Sink_retries_while_the_gateway_is_down(t *testing.T) {
	pg := newPrivateGateway(t)
	bucket := pg.newBucket(t)
	pg.stop()

	h := newSink(t, pg.config(bucket))
	require.NoError(t, h.sink.Publish("t", event("e1", "acme")))
	require.NoError(t, h.sink.Publish("t", event("e2", "acme")))
	h.rotate(t, 1)

	f := h.waitFailed(t)
	var ue *s3.UploadError
	require.ErrorAs(t, f.err, &ue)
	assert.Empty(t, ue.Code, "no response, no AWS code")
	class, _ := sinks.Classify(f.err)
	assert.Equal(t, sinks.ClassRetryable, class)
	assert.Equal(t, []string{f.key}, spooled(t, h.sink.Spool()))

	// Still down at the next attempt.
	h.retryNow(t)
	assert.Equal(t, f.key, h.waitFailed(t).key)
	assert.Equal(t, 1, h.sink.Pending())

	pg.start(t)
	h.retryNow(t)
	assert.Equal(t, f.key, h.waitUploaded(t))
	assert.Equal(t, []string{"e1", "e2"}, pg.objectIDs(t, bucket, f.key))
	assert.Empty(t, spooled(t, h.sink.Spool()), "removed once the upload is confirmed")
	require.NoError(t, h.sink.Close())
}

// TestS3Sink_classifies_refusals runs the SDK against a server answering
// each upload with a given S3 error.
func TestS3Sink_classifies_refusals(t *testing.T) {
	tests := []struct {
		status int
		code   string
		want   sinks.Class
	}{
		{403, "InvalidAccessKeyId", sinks.ClassPermanent},
		{403, "SignatureDoesNotMatch", sinks.ClassPermanent},
		{403, "AccessDenied", sinks.ClassPermanent},
		{404, "NoSuchBucket", sinks.ClassPermanent},
		{400, "EntityTooLarge", sinks.ClassPermanent},
		{408, "RequestTimeout", sinks.ClassRetryable},
		{429, "SlowDown", sinks.ClassRetryable},
		{500, "InternalError", sinks.ClassRetryable},
		{503, "SlowDown", sinks.ClassRetryable},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d_%s", tt.status, tt.code), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", "application/xml")
				w.WriteHeader(tt.status)
				fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>refused</Message></Error>`, tt.code)
			}))
			defer srv.Close()
			h := newSink(t, s3.Config{AccessKeyID: "AKID", SecretAccessKey: "secret", Bucket: "exports",
				Endpoint: srv.URL, PathStyle: true, AllowPrivateNetworks: true})
			require.NoError(t, h.sink.Publish("t", event("e1", "acme")))
			h.rotate(t, 1)
			f := h.waitFailed(t)
			var ue *s3.UploadError
			require.ErrorAs(t, f.err, &ue)
			assert.Equal(t, tt.code, ue.Code)
			assert.Equal(t, tt.status, ue.StatusCode)
			class, _ := sinks.Classify(f.err)
			assert.Equal(t, tt.want, class)
			assert.Len(t, spooled(t, h.sink.Spool()), 1)
		})
	}
}

func TestS3Sink_needs_a_spool(t *testing.T) {
	_, err := s3.Config{Bucket: "exports", Region: "us-east-1"}.NewPublisher(sinks.Env{IntegrationID: "erp-1"})
	var fe *field.Error
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, "spool_dir", fe.Field)

	data := t.TempDir()
	pub, err := s3.Config{Bucket: "exports", Region: "us-east-1", AccessKeyID: "a", SecretAccessKey: "b"}.
		NewPublisher(sinks.Env{IntegrationID: "erp-1", DataDir: data})
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(data, "s3-spool", "erp-1"), pub.(*s3.Publisher).Spool())
	require.NoError(t, pub.Close())
}

func TestConfig_decodes_newstore_s3_parameters(t *testing.T) {
	// The s3_parameters of NewStore's example integration.
	cfg, err := sinks.NewRegistry(s3.Type).Decode("s3", json.RawMessage(`{
		"aws_access_key_id": "some_s3_access_key_id",
		"aws_secret_access_key": "some_s3_secret_key",
		"aws_region": "us-east-1",
		"bucket": "sap_export",
		"key_prefix": "newstore_integration_002"
	}`))
	require.NoError(t, err)
	require.NoError(t, cfg.Validate())
	c := cfg.(*s3.Config)
	assert.Equal(t, "sap_export", c.Bucket)
	assert.Equal(t, "newstore_integration_002", c.KeyPrefix)

	masked := cfg.Masked().(s3.Config)
	assert.Equal(t, "****_key", masked.SecretAccessKey)
	assert.Equal(t, "****y_id", masked.AccessKeyID, "an access key id is a credential too, as sqs shows it")
	assert.Equal(t, "some_s3_secret_key", c.SecretAccessKey, "Masked returns a copy")
}

func TestConfig_validate_names_each_field(t *testing.T) {
	ok := s3.Config{Bucket: "exports"}
	tests := []struct {
		name   string
		change func(*s3.Config)
		want   []string
	}{
		{"minimal", func(*s3.Config) {}, nil},
		{"no bucket", func(c *s3.Config) { c.Bucket = "" }, []string{"bucket: is required"}},
		{"bad bucket", func(c *s3.Config) { c.Bucket = "-x" }, []string{"bucket: must be 3 to 63 letters, digits, '.', '-' or '_', starting and ending with a letter or digit"}},
		{"key without secret", func(c *s3.Config) { c.AccessKeyID = "AKID" }, []string{"aws_secret_access_key: is required with aws_access_key_id"}},
		{"secret without key", func(c *s3.Config) { c.SecretAccessKey = "s" }, []string{"aws_access_key_id: is required with aws_secret_access_key"}},
		{"region", func(c *s3.Config) { c.Region = "us east" }, []string{`aws_region: must be a region name such as "us-east-1"`}},
		{"endpoint scheme", func(c *s3.Config) { c.Endpoint = "ftp://x" }, []string{"endpoint: must be an http or https URL"}},
		{"endpoint credentials", func(c *s3.Config) { c.Endpoint = "http://u:p@x" }, []string{"endpoint: must not hold credentials"}},
		{"file settings", func(c *s3.Config) { c.KeyPrefix = "/x"; c.Fsync = "never"; c.RotateBytes = -1 },
			[]string{`key_prefix: must not start or end with "/" nor contain "//"`, "rotate_bytes: must not be negative", `fsync: must be one of "rotation", "batch", "event"`}},
		{"drain", func(c *s3.Config) { c.DrainTimeout = -1 }, []string{"drain_timeout: must not be negative"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.change(&c)
			var got []string
			for _, e := range field.Errors(c.Validate()) {
				got = append(got, e.Error())
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

func FuzzDecodeConfig(f *testing.F) {
	f.Add([]byte(`{"aws_access_key_id":"AKID","aws_secret_access_key":"wJalrXUtnFEMI/K7MDENG","aws_region":"us-east-1","bucket":"sap_export","key_prefix":"p"}`))
	f.Add([]byte(`{"bucket":"b","endpoint":"http://127.0.0.1:7070","path_style":true,"rotate_every":"1m","fsync":"event"}`))
	f.Add([]byte(`{"bucket":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := s3.Type.Decode(data)
		if err != nil {
			for _, e := range field.Errors(err) {
				require.IsType(t, &field.Error{}, e)
			}
			return
		}
		c := cfg.(*s3.Config)
		verr := c.Validate()
		masked := c.Masked().(s3.Config)
		if len(c.SecretAccessKey) >= 8 {
			require.NotContains(t, fmt.Sprintf("%+v", masked), c.SecretAccessKey)
		}
		if verr != nil && len(c.SecretAccessKey) >= 8 {
			require.NotContains(t, verr.Error(), c.SecretAccessKey, "errors never quote the secret")
		}
	})
}
