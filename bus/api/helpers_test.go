package api_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/access"
	"github.com/sinkbus/sinkbus/bus/api"
	"github.com/sinkbus/sinkbus/bus/bustest"
	"github.com/sinkbus/sinkbus/sinks"
	_ "github.com/sinkbus/sinkbus/sinks/all" // integrations of every built-in type come as JSON
	"github.com/sinkbus/sinkbus/sinks/webhook"
)

// broken is an integration type whose sink cannot be built: its error
// quotes a password, as a driver's error might. It makes the bus answer an
// internal error (500) on create, start and update.
type broken struct{}

func (broken) Type() string                 { return "broken" }
func (broken) Validate() error              { return nil }
func (b broken) Masked() sinks.Config       { return b }
func (broken) MarshalJSON() ([]byte, error) { return []byte("{}"), nil }
func (broken) NewPublisher(sinks.Env) (message.Publisher, error) {
	return nil, errors.New("cannot reach the broker at 10.0.0.1 with password hunter2")
}

// registry is bustest's registry (the built-in types, aws_sqs, stomp and s3
// among them, and bustest) plus "broken".
func registry() *sinks.Registry {
	r := bustest.Registry()
	err := r.Register(sinks.Type{Name: "broken", Decode: func(json.RawMessage) (sinks.Config, error) {
		return broken{}, nil
	}})
	if err != nil {
		panic(err)
	}
	return r
}

// server is the API of a test bus mounted under /v2 on an httptest server.
type server struct {
	*httptest.Server
	t       testing.TB
	tb      *bustest.Bus
	handler http.Handler // the API, unmounted
}

// newServer starts a bus (bustest, fake clock) and its API. cfg adjusts
// the bus configuration.
func newServer(t testing.TB, opts api.Options, cfg ...func(*bus.Config)) *server {
	t.Helper()
	cfg = append([]func(*bus.Config){func(c *bus.Config) { c.Sinks = registry() }}, cfg...)
	tb := bustest.New(t, cfg...)
	if opts.Caller == nil {
		opts.Caller = access.Anyone(access.Admin())
	}
	h, err := api.New(tb.Bus, opts)
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/v2/", http.StripPrefix("/v2", h))
	s := &server{Server: httptest.NewServer(mux), t: t, tb: tb, handler: h}
	t.Cleanup(s.Close)
	return s
}

// durable gives the bus a data directory, as an application that keeps
// exports (file, s3) runs it.
func durable(t *testing.T) func(*bus.Config) {
	dir := t.TempDir()
	return func(c *bus.Config) { c.DataDir = dir }
}

// response is what the API answered.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request, as JSON; body may be "" for none. headers are name,
// value pairs, set after Content-Type (which they may replace).
func (s *server) do(method, path, body string, headers ...string) response {
	s.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.URL+"/v2"+path, rd)
	require.NoError(s.t, err)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := s.Client().Do(req)
	require.NoError(s.t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(s.t, err)
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

// object decodes the response body as a JSON object.
func (r response) object(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.body, &m), "body: %s", r.body)
	return m
}

// data is the Elastic Path envelope's data object.
func (r response) data(t *testing.T) map[string]any {
	t.Helper()
	d, ok := r.object(t)["data"].(map[string]any)
	require.True(t, ok, "no data object in %s", r.body)
	return d
}

// errorBody decodes an error response, checking its fields.
func (r response) errorBody(t *testing.T) api.Error {
	t.Helper()
	var e api.Error
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&e), "body: %s", r.body)
	require.NotEmpty(t, e.ErrorCode)
	require.NotEmpty(t, e.Message)
	require.Equal(t, r.header.Get(api.RequestIDHeader), e.RequestID)
	return e
}

// sample reads a request or response body as Elastic Path's and NewStore's
// documentation print them (testdata).
func sample(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return string(data)
}

// keys returns the keys of a JSON object, nested objects as "a.b".
func keys(m map[string]any, prefix string) []string {
	var out []string
	for k, v := range m {
		out = append(out, prefix+k)
		if sub, ok := v.(map[string]any); ok {
			out = append(out, keys(sub, prefix+k+".")...)
		}
	}
	return out
}

// receiver is a webhook endpoint that verifies the Standard Webhooks
// signature with secret and answers status (204 unless set).
type receiver struct {
	*httptest.Server
	secret string
	status atomic.Int32
	mu     sync.Mutex
	got    []sinks.Envelope
	auth   []string
	notify chan struct{}
}

func newReceiver(t testing.TB, secret string) *receiver {
	rc := &receiver{secret: secret, notify: make(chan struct{}, 100)}
	rc.status.Store(http.StatusNoContent)
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		secret := rc.secret
		rc.mu.Unlock()
		if err := webhook.Verify([]string{secret}, r.Header, body, time.Now(), 0); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			rc.notify <- struct{}{}
			return
		}
		var env sinks.Envelope
		_ = json.Unmarshal(body, &env)
		status := int(rc.status.Load())
		rc.mu.Lock()
		if status < 300 {
			rc.got = append(rc.got, env)
		}
		rc.auth = append(rc.auth, r.Header.Get("Authorization"))
		rc.mu.Unlock()
		w.WriteHeader(status)
		rc.notify <- struct{}{}
	}))
	t.Cleanup(rc.Close)
	return rc
}

// wait waits for n more requests.
func (rc *receiver) wait(t testing.TB, n int) {
	t.Helper()
	for range n {
		select {
		case <-rc.notify:
		case <-time.After(10 * time.Second):
			t.Fatal("the receiver got no request in 10s")
		}
	}
}

func (rc *receiver) setSecret(s string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.secret = s
}

func (rc *receiver) delivered() []sinks.Envelope {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]sinks.Envelope(nil), rc.got...)
}

func (rc *receiver) authorizations() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]string(nil), rc.auth...)
}

// eventually polls cond every few milliseconds for up to 10 s of real time.
func eventually(t testing.TB, cond func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
}
