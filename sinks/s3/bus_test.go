package s3_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/bustest"
	"github.com/sinkbus/sinkbus/bus/formats"
	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/s3"
)

// Tests of s3 integrations through the whole bus, against versitygw.

// deliveries counts the events the bus delivered into its sinks (into the
// spool, for an s3 integration).
type deliveries struct {
	bus.NopObserver
	n       atomic.Int64
	changed chan struct{}
}

func (d *deliveries) Attempted(_ string, a middleware.Attempt) {
	if a.Err == nil {
		d.n.Add(1)
		select {
		case d.changed <- struct{}{}:
		default:
		}
	}
}

func (d *deliveries) waitFor(t *testing.T, n int64) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for d.n.Load() < n {
		select {
		case <-d.changed:
		case <-deadline:
			t.Fatalf("%d of %d events delivered", d.n.Load(), n)
		}
	}
}

// newBus is a bus on a fake clock with a data directory (the spools live
// there), counting deliveries.
func newBus(t *testing.T) (tb *bustest.Bus, d *deliveries, dataDir string) {
	t.Helper()
	d = &deliveries{changed: make(chan struct{}, 1)}
	dataDir = t.TempDir()
	tb = bustest.New(t, func(c *bus.Config) {
		c.DataDir = dataDir
		c.Observer = d
	})
	return tb, d, dataDir
}

// waitLog polls the integration log until it has an entry with action and
// returns the newest such entry.
func waitLog(t *testing.T, tb *bustest.Bus, id, action string) middleware.LogEntry {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		entries, err := tb.Integrations().Log(context.Background(), id)
		require.NoError(t, err)
		for _, e := range entries {
			if e.Action == action {
				return e
			}
		}
		require.True(t, time.Now().Before(deadline), "no %s in the log of %s: %+v", action, id, entries)
		time.Sleep(10 * time.Millisecond) // polling the bus's state, not a guess
	}
}

// objects lists a bucket's keys, sorted.
func (g gateway) objects(t *testing.T, bucket string) []string {
	t.Helper()
	out, err := g.client().ListObjectsV2(context.Background(), &awss3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	require.NoError(t, err)
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	sort.Strings(keys)
	return keys
}

// waitObjects polls a bucket until it holds n objects, calling poke (when
// not nil) between looks.
func (g gateway) waitObjects(t *testing.T, bucket string, n int, poke func()) []string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		keys := g.objects(t, bucket)
		if len(keys) >= n {
			return keys
		}
		require.True(t, time.Now().Before(deadline), "%d of %d objects in %s", len(keys), n, bucket)
		if poke != nil {
			poke()
		}
		time.Sleep(20 * time.Millisecond) // polling the store, not a guess
	}
}

func s3Params(t *testing.T, g gateway, bucket string, extra map[string]any) json.RawMessage {
	t.Helper()
	p := map[string]any{
		"aws_access_key_id":     g.access,
		"aws_secret_access_key": g.secret,
		"aws_region":            "us-east-1",
		"bucket":                bucket,
		"key_prefix":            "newstore_integration_002",
		"endpoint":              g.endpoint,
		"path_style":            true,
		// The gateway listens on loopback: the integration asks for it,
		// and bustest's bus allows it.
		"allow_private_networks": true,
	}
	for k, v := range extra {
		p[k] = v
	}
	data, err := json.Marshal(p)
	require.NoError(t, err)
	return data
}

func createNewStore(t *testing.T, tb *bustest.Bus, id string, params json.RawMessage) {
	t.Helper()
	body := fmt.Sprintf(`{"id":%q,"integration_type":"permanent","s3_parameters":%s}`, id, params)
	_, _, err := formats.Create(context.Background(), tb.Integrations(), []byte(body))
	require.NoError(t, err)
}

func publish(tb *bustest.Bus, tenant string, ids ...string) {
	for _, id := range ids {
		tb.MustPublish(bus.Event{ID: id, Name: "order.fulfilled", Tenant: tenant, Payload: json.RawMessage(`{"order_id":"` + id + `"}`)})
	}
}

// proxy is a TCP proxy in front of a shared server, which a test can take
// down and bring back on the same address without touching the server.
type proxy struct {
	target, addr string
	mu           sync.Mutex
	ln           net.Listener
	conns        map[net.Conn]bool
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	p := &proxy{target: target, conns: map[net.Conn]bool{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.stop)
	return p
}

func (p *proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.pipe(c)
		}
	}()
}

func (p *proxy) pipe(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.ln == nil { // stopped meanwhile
		p.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	p.conns[c], p.conns[up] = true, true
	p.mu.Unlock()
	go func() { _, _ = io.Copy(up, c); up.Close() }()
	_, _ = io.Copy(c, up)
	c.Close()
}

// stop refuses new connections and cuts the open ones.
func (p *proxy) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

func (p *proxy) start(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	require.NoError(t, err)
	p.serve(ln)
}

var newStoreKey = regexp.MustCompile(`^newstore_integration_002/(acme|globex)/\d{13}-data-[a-z0-9]+\.export$`)

func TestS3Integration_newstore_json_uploads_and_survives_an_outage(t *testing.T) {
	g := sharedGateway(t)
	bucket := g.newBucket(t)
	px := newProxy(t, strings.TrimPrefix(g.endpoint, "http://"))
	viaProxy := g
	viaProxy.endpoint = "http://" + px.addr
	tb, delivered, _ := newBus(t)
	ctx := context.Background()
	const id = "sap-s3-integration-002"
	createNewStore(t, tb, id, s3Params(t, viaProxy, bucket, nil))

	got, err := tb.Integrations().Get(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, "s3", got.Type())
	masked, err := json.Marshal(got)
	require.NoError(t, err)
	assert.NotContains(t, string(masked), g.secret, "reads mask the secret")

	// Stopping finishes the open files, one per tenant, and uploads them.
	publish(tb, "acme", "a1", "a2", "a3")
	publish(tb, "globex", "g1", "g2")
	delivered.waitFor(t, 5)
	_, err = tb.Integrations().Stop(ctx, id)
	require.NoError(t, err)
	keys := g.objects(t, bucket)
	require.Len(t, keys, 2)
	byTenant := map[string][]string{}
	for _, key := range keys {
		require.Regexp(t, newStoreKey, key)
		ids := g.objectIDs(t, bucket, key)
		sort.Strings(ids) // delivery is parallel: lines in any order
		byTenant[strings.Split(key, "/")[1]] = ids
	}
	assert.Equal(t, map[string][]string{"acme": {"a1", "a2", "a3"}, "globex": {"g1", "g2"}}, byTenant)

	// The gateway goes away for a while: the finished file waits and is retried.
	px.stop()
	_, err = tb.Integrations().Start(ctx, id)
	require.NoError(t, err)
	publish(tb, "acme", "a4", "a5")
	delivered.waitFor(t, 7)
	tb.Clock.Advance(5 * time.Minute) // rotation
	failed := waitLog(t, tb, id, s3.ActionUploadFailed)
	assert.Contains(t, failed.Reason, "no answer from the store")
	assert.Contains(t, failed.Reason, "retryable")
	assert.Len(t, g.objects(t, bucket), 2)

	px.start(t)
	first := map[string]bool{keys[0]: true, keys[1]: true}
	keys = g.waitObjects(t, bucket, 3, func() { tb.Clock.Advance(s3.RetryMax) })
	require.Len(t, keys, 3)
	for _, key := range keys {
		if !first[key] {
			require.Regexp(t, newStoreKey, key)
			assert.ElementsMatch(t, []string{"a4", "a5"}, g.objectIDs(t, bucket, key))
		}
	}
	recovered := waitLog(t, tb, id, s3.ActionUploadRecovered)
	assert.Contains(t, recovered.Reason, "work again")
	rejected, err := tb.Integrations().Rejected(ctx, id)
	require.NoError(t, err)
	assert.Empty(t, rejected)
}

func TestS3Integration_wrong_credentials_show_in_the_integration_log(t *testing.T) {
	g := sharedGateway(t)
	bucket := g.newBucket(t)
	tb, delivered, _ := newBus(t)
	ctx := context.Background()
	bad := g
	bad.secret = "not-the-secret"
	createNewStore(t, tb, "sap-s3", s3Params(t, bad, bucket, map[string]any{"rotate_bytes": 1}))

	publish(tb, "acme", "e1")
	delivered.waitFor(t, 1)
	failed := waitLog(t, tb, "sap-s3", s3.ActionUploadFailed)
	assert.Contains(t, failed.Reason, "SignatureDoesNotMatch (HTTP 403), permanent")
	assert.Contains(t, failed.Reason, "Retries cannot fix this")
	assert.NotContains(t, failed.Reason, "not-the-secret")

	// Stopping does not wait for the store, and is no error: the file waits.
	_, err := tb.Integrations().Stop(ctx, "sap-s3")
	require.NoError(t, err)
	pending := waitLog(t, tb, "sap-s3", s3.ActionUploadPending)
	assert.Equal(t, "1 export file waits in the spool for upload to bucket "+bucket+"; they upload when the integration starts again.", pending.Reason)
	entries, err := tb.Integrations().Log(ctx, "sap-s3")
	require.NoError(t, err)
	var failures int
	for _, e := range entries {
		assert.NotContains(t, e.Reason, "not-the-secret")
		if e.Action == s3.ActionUploadFailed {
			failures++
		}
	}
	assert.Equal(t, 1, failures, "the drain's attempt failed the same way: one entry")
	assert.Empty(t, g.objects(t, bucket))
}

func TestS3Integration_delete_purges_the_spool(t *testing.T) {
	g := sharedGateway(t)
	oldBucket, newBucket := g.newBucket(t), g.newBucket(t)
	tb, delivered, dataDir := newBus(t)
	ctx := context.Background()
	bad := g
	bad.secret = "not-the-secret"
	createNewStore(t, tb, "sap-s3", s3Params(t, bad, oldBucket, map[string]any{"rotate_bytes": 1}))
	publish(tb, "acme", "old-1", "old-2")
	delivered.waitFor(t, 2)
	waitLog(t, tb, "sap-s3", s3.ActionUploadFailed)

	require.NoError(t, tb.Integrations().Delete(ctx, "sap-s3"))
	spool := filepath.Join(dataDir, "s3-spool", "sap-s3")
	_, err := os.Stat(spool)
	assert.ErrorIs(t, err, os.ErrNotExist, "the bus purged the deleted integration's spool")

	// The same id again, another bucket: only its own events arrive. The
	// spool's leftovers would be queued before its first file.
	createNewStore(t, tb, "sap-s3", s3Params(t, g, newBucket, map[string]any{"rotate_bytes": 1}))
	publish(tb, "acme", "new-1")
	delivered.waitFor(t, 3)
	keys := g.waitObjects(t, newBucket, 1, nil)
	var ids []string
	for _, key := range keys {
		ids = append(ids, g.objectIDs(t, newBucket, key)...)
	}
	assert.Equal(t, []string{"new-1"}, ids)
	assert.Empty(t, g.objects(t, oldBucket))
}

// The sinks' interfaces the bus relies on.
var (
	_ sinks.Purger = s3.Config{}
	_ sinks.Purger = (*s3.Config)(nil)
)
