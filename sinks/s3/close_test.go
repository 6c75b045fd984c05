package s3_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/field"
	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/file"
	"github.com/sinkbus/sinkbus/sinks/s3"
)

// fakeStore is an S3 endpoint answering every request as its mode says:
// an S3 error ("403 SignatureDoesNotMatch"), "hang" (no answer until the
// test ends) or "" (the upload is stored).
type fakeStore struct {
	*httptest.Server
	mode    atomic.Value // string
	mu      sync.Mutex
	objects map[string][]byte
	release chan struct{}
}

func newFakeStore(t *testing.T, mode string) *fakeStore {
	t.Helper()
	fs := &fakeStore{objects: map[string][]byte{}, release: make(chan struct{})}
	fs.mode.Store(mode)
	fs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var status int
		var code string
		switch mode := fs.mode.Load().(string); mode {
		case "":
			fs.mu.Lock()
			fs.objects[r.URL.Path] = body
			fs.mu.Unlock()
			w.Header().Set("ETag", `"0123456789abcdef0123456789abcdef"`)
			w.WriteHeader(http.StatusOK)
			return
		case "hang":
			select {
			case <-fs.release:
			case <-r.Context().Done():
			}
			return
		default:
			_, err := fmt.Sscanf(mode, "%d %s", &status, &code)
			if err != nil {
				panic(err)
			}
		}
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(status)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>refused</Message></Error>`, code)
	}))
	t.Cleanup(func() {
		close(fs.release)
		fs.Close()
	})
	return fs
}

func (fs *fakeStore) config() s3.Config {
	return s3.Config{AccessKeyID: "AKID", SecretAccessKey: "secret-never-logged", Bucket: "exports",
		Endpoint: fs.URL, PathStyle: true, AllowPrivateNetworks: true}
}

func (fs *fakeStore) stored() int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return len(fs.objects)
}

func TestS3Sink_integration_log_collapses_repeated_failures(t *testing.T) {
	store := newFakeStore(t, "403 SignatureDoesNotMatch")
	h := newSink(t, store.config())
	require.NoError(t, h.sink.Publish("t", event("e1", "acme")))
	h.rotate(t, 1)
	since := h.clk.Now().UTC().Format(time.RFC3339) // of the first failure

	h.waitFailed(t)
	entries := h.log.all()
	require.Len(t, entries, 1)
	assert.Equal(t, s3.ActionUploadFailed, entries[0].action)
	assert.Regexp(t, `^Could not upload acme/\d{13}-data-[a-z0-9]+\.export to bucket exports: `, entries[0].reason)
	assert.Contains(t, entries[0].reason, "SignatureDoesNotMatch (HTTP 403), permanent")
	assert.Contains(t, entries[0].reason, "Retries cannot fix this")
	assert.Contains(t, entries[0].reason, "1 export file waits in the spool; next attempt in 5m0s.")
	assert.NotContains(t, entries[0].reason, "secret-never-logged")

	// The same failure again within FailureLogInterval: nothing new.
	h.retryNow(t)
	h.waitFailed(t)
	assert.Len(t, h.log.all(), 1)

	// An hour on, it is written again, with the streak so far.
	require.NoError(t, h.clk.BlockUntil(t.Context(), 1))
	h.clk.Advance(s3.FailureLogInterval)
	h.waitFailed(t)
	entries = h.log.all()
	require.Len(t, entries, 2)
	assert.Contains(t, entries[1].reason, "Uploads still fail (3 attempts since "+since+").")

	// A different failure is written at once.
	store.mode.Store("503 SlowDown")
	h.retryNow(t)
	h.waitFailed(t)
	entries = h.log.all()
	require.Len(t, entries, 3)
	assert.Contains(t, entries[2].reason, "SlowDown (HTTP 503), retryable")
	assert.NotContains(t, entries[2].reason, "Retries cannot fix this")

	// And the end of the streak.
	store.mode.Store("")
	h.retryNow(t)
	h.waitUploaded(t)
	entries = h.log.all()
	require.Len(t, entries, 4)
	assert.Equal(t, s3.ActionUploadRecovered, entries[3].action)
	assert.Equal(t, "Uploads to bucket exports work again after 4 failed attempts since "+since+"; 0 export files wait in the spool.", entries[3].reason)
	assert.Equal(t, 1, store.stored())

	require.NoError(t, h.sink.Close())
	assert.Len(t, h.log.all(), 4, "nothing pending, nothing more to say")
}

// closed runs close in a goroutine and fails the test if it has not
// returned after a generous while (a guard against a hang, not a timing).
func closed(t *testing.T, close func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- close() }()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not return")
		return nil
	}
}

func TestS3Sink_close_does_not_wait_for_a_failing_store(t *testing.T) {
	store := newFakeStore(t, "500 InternalError")
	cfg := store.config()
	cfg.DrainTimeout = sinks.Duration(time.Hour) // the test would hang if Close waited it out
	h := newSink(t, cfg)
	require.NoError(t, h.sink.Publish("t", event("e1", "acme")))
	h.rotate(t, 1)
	first := h.waitFailed(t) // the uploader now waits for its retry on the clock
	require.NoError(t, h.sink.Publish("t", event("e2", "acme")))

	require.NoError(t, closed(t, h.sink.Close), "files left in the spool are no error")
	assert.Equal(t, first.key, h.waitFailed(t).key, "Close gave the oldest file one more attempt, and stopped at its failure")
	select {
	case f := <-h.failed:
		t.Fatalf("Close went on after a failure, with %s", f.key)
	default:
	}
	assert.Len(t, spooled(t, h.sink.Spool()), 2)
	assert.Equal(t, 2, h.sink.Pending())

	entries := h.log.all()
	require.Len(t, entries, 2, "the drain's failure is the same as before: not written again")
	assert.Equal(t, s3.ActionUploadFailed, entries[0].action)
	assert.Equal(t, s3.ActionUploadPending, entries[1].action)
	assert.Equal(t, "2 export files wait in the spool for upload to bucket exports; they upload when the integration starts again.", entries[1].reason)

	// The next sink on the spool uploads them.
	store.mode.Store("")
	next := newSink(t, func() s3.Config { c := store.config(); c.SpoolDir = h.sink.Spool(); return c }())
	next.waitUploaded(t)
	next.waitUploaded(t)
	assert.Equal(t, 2, store.stored())
	require.NoError(t, next.sink.Close())
}

func TestS3Sink_close_is_bounded_by_the_drain_timeout(t *testing.T) {
	store := newFakeStore(t, "hang")
	cfg := store.config()
	cfg.DrainTimeout = sinks.Duration(50 * time.Millisecond)
	h := newSink(t, cfg)
	require.NoError(t, h.sink.Publish("t", event("e1", "acme")))

	require.NoError(t, closed(t, h.sink.Close))
	assert.Len(t, spooled(t, h.sink.Spool()), 1)
	assert.Equal(t, []string{s3.ActionUploadPending}, h.log.actions(),
		"an attempt cut short by the drain timeout is no failure of the store")
}

func TestS3Sink_one_sink_per_spool(t *testing.T) {
	store := newFakeStore(t, "")
	first := newSink(t, store.config())

	cfg := store.config()
	cfg.SpoolDir = first.sink.Spool()
	_, err := s3.New(cfg, sinks.Env{IntegrationID: "erp-2"})
	var fe *field.Error
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, "spool_dir", fe.Field)
	assert.Contains(t, fe.Rule, "in use by another sink")

	// Nor may a file sink write into it.
	_, err = file.New(file.Config{Dir: first.sink.Spool()}, sinks.Env{})
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, "dir", fe.Field)

	require.NoError(t, first.sink.Publish("t", event("e1", "acme")))
	require.NoError(t, first.sink.Close())
	first.waitUploaded(t)
	second, err := s3.New(cfg, sinks.Env{IntegrationID: "erp-2"})
	require.NoError(t, err, "Close released the spool")
	require.NoError(t, second.Close())
}

func TestConfig_Purge_removes_the_spool(t *testing.T) {
	store := newFakeStore(t, "403 AccessDenied")
	data := t.TempDir()
	env := sinks.Env{IntegrationID: "erp-1", DataDir: data}
	cfg := store.config()
	sink, err := s3.New(cfg, env)
	require.NoError(t, err)
	require.NoError(t, sink.Publish("t", event("e1", "acme")))
	spool := sink.Spool()

	err = cfg.Purge(env)
	assert.ErrorIs(t, err, file.ErrDirInUse, "not while the sink runs")
	require.NoError(t, sink.Close())
	require.Len(t, spooled(t, spool), 1)

	var purger sinks.Purger = &cfg // as the bus holds a decoded configuration
	require.NoError(t, purger.Purge(env))
	assert.NoDirExists(t, spool)
	assert.DirExists(t, filepath.Join(data, "s3-spool"), "other integrations' spools stay")

	// A new integration with the same id starts with an empty spool.
	store.mode.Store("")
	again, err := s3.New(cfg, env)
	require.NoError(t, err)
	require.NoError(t, again.Close())
	assert.Zero(t, store.stored())

	// Nothing to purge is no error.
	require.NoError(t, cfg.Purge(env))
	require.NoError(t, cfg.Purge(sinks.Env{IntegrationID: "erp-1"}))
}

func TestConfig_Purge_keeps_a_configured_spool_dir(t *testing.T) {
	store := newFakeStore(t, "403 AccessDenied")
	spool := t.TempDir()
	cfg := store.config()
	cfg.SpoolDir = spool
	cfg.KeyPrefix = "kp"
	sink, err := s3.New(cfg, sinks.Env{IntegrationID: "erp-1"})
	require.NoError(t, err)
	require.NoError(t, sink.Publish("t", event("e1", "acme")))
	require.NoError(t, sink.Close())
	mine := filepath.Join(spool, "README")
	require.NoError(t, os.WriteFile(mine, []byte("the operator's"), 0o644))

	require.NoError(t, cfg.Purge(sinks.Env{IntegrationID: "erp-1", DataDir: t.TempDir()}))
	assert.Empty(t, spooled(t, spool))
	assert.FileExists(t, mine)
	assert.NoDirExists(t, filepath.Join(spool, "kp"))
}

func TestS3Sink_purge_error_names_the_spool(t *testing.T) {
	store := newFakeStore(t, "")
	h := newSink(t, store.config())
	err := h.sink.Close()
	require.NoError(t, err)
	lock, err := file.LockDir(h.sink.Spool())
	require.NoError(t, err)
	defer lock.Unlock()
	cfg := store.config()
	cfg.SpoolDir = h.sink.Spool()
	err = cfg.Purge(sinks.Env{})
	require.ErrorIs(t, err, file.ErrDirInUse)
	assert.Contains(t, err.Error(), h.sink.Spool())
}
