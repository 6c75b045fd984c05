package ingest_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/access"
	"github.com/sinkbus/sinkbus/bus/bustest"
	"github.com/sinkbus/sinkbus/bus/ingest"
)

// The starter kit's example payload.
const starterKitBody = `{
"data": {
"uid": "event_uid_1",
"event": "be-observer.catalog_product_create",
"value": {
"sku": "PRODUCT_SKU",
"name": "Product SKU",
"price": 1,
"description": "Product SKU description"
}
}
}`

const token = "tok-5f1d8b2a9c3e4d7f"

// fixture is a test bus with a recording integration and the ingestion
// handler on an httptest server.
type fixture struct {
	*httptest.Server
	t    *testing.T
	tb   *bustest.Bus
	sink *bustest.Sink
	head uint64 // the journal's head before the test
}

func newFixture(t *testing.T, opts ingest.Options, cfg ...func(*bus.Config)) *fixture {
	t.Helper()
	tb := bustest.New(t, cfg...)
	sink := tb.Record()
	if opts.Authenticate == nil && opts.Caller == nil {
		opts.Authenticate = ingest.Bearer(token)
	}
	if opts.Clock == nil {
		opts.Clock = tb.Clock
	}
	h, err := ingest.New(tb.Bus, opts)
	require.NoError(t, err)
	f := &fixture{Server: httptest.NewServer(h), t: t, tb: tb, sink: sink, head: tb.Events().Head()}
	t.Cleanup(f.Close)
	return f
}

// post sends body; headers are name, value pairs, and the bearer token is
// added unless an Authorization header is given.
func (f *fixture) post(body string, headers ...string) (int, ingest.Response) {
	f.t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.URL+"/ingest", strings.NewReader(body))
	require.NoError(f.t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := f.Client().Do(req)
	require.NoError(f.t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(f.t, err)
	var out ingest.Response
	require.NoError(f.t, json.Unmarshal(data, &out), "body: %s", data)
	assert.Equal(f.t, "application/json", resp.Header.Get("Content-Type"))
	return resp.StatusCode, out
}

// callers is the Caller hook of the tenants' tests: token is the
// application's (the administrator's), "tok-<tenant>" each tenant's.
func callers(t *testing.T, tenants ...string) access.Identify {
	t.Helper()
	m := map[string]access.Caller{token: access.Admin()}
	for _, name := range tenants {
		m["tok-"+name] = access.Tenant(name)
	}
	identify, err := access.Bearer(m)
	require.NoError(t, err)
	return identify
}

// as is the Authorization header of tenant's token.
func as(tenant string) []string { return []string{"Authorization", "Bearer tok-" + tenant} }

// published is how many events the bus journal holds.
func (f *fixture) published() uint64 { return f.tb.Events().Head() - f.head }

func event(uid, name, value string) string {
	return `{"data":{"uid":` + strconv.Quote(uid) + `,"event":` + strconv.Quote(name) + `,"value":` + value + `}}`
}

func TestIngest_publishes_the_starter_kit_example(t *testing.T) {
	f := newFixture(t, ingest.Options{Events: []string{"be-observer.*"}, Caller: callers(t, "acme")})
	status, resp := f.post(starterKitBody, as("acme")...)
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, ingest.Response{Type: "be-observer.catalog_product_create",
		Response: ingest.Result{Success: true, Message: "Event published successfully"}}, resp)

	got := f.sink.WaitFor(t, 1)[0]
	assert.Equal(t, "acme:event_uid_1", got.ID, "the uid is the tenant's")
	assert.Equal(t, "be-observer.catalog_product_create", got.Name)
	assert.Equal(t, "be-observer", got.Entity())
	assert.Equal(t, "acme", got.Tenant)
	assert.JSONEq(t, `{"sku":"PRODUCT_SKU","name":"Product SKU","price":1,"description":"Product SKU description"}`, string(got.Payload))
}

func TestIngest_refuses_unauthenticated_requests_with_401(t *testing.T) {
	const secret = "shared-secret-of-the-erp"
	hmacAuth, err := ingest.HMAC("X-Signature", secret)
	require.NoError(t, err)
	std, err := ingest.StandardWebhooks("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	require.NoError(t, err)
	hexSig := func(body string) string {
		m := hmac.New(sha256.New, []byte(secret))
		m.Write([]byte(body))
		return hex.EncodeToString(m.Sum(nil))
	}
	stdHeaders := func(body string, at time.Time) []string {
		key, _ := base64.StdEncoding.DecodeString("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
		ts := strconv.FormatInt(at.Unix(), 10)
		m := hmac.New(sha256.New, key)
		m.Write([]byte("msg-1." + ts + "." + body))
		return []string{"webhook-id", "msg-1", "webhook-timestamp", ts,
			"webhook-signature", "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))}
	}
	body := event("u-1", "product.created", `{}`)
	for _, tc := range []struct {
		name    string
		auth    ingest.Authenticator
		headers []string
		want    int
	}{
		{"bearer missing", ingest.Bearer(token), []string{"Authorization", ""}, http.StatusUnauthorized},
		{"bearer wrong", ingest.Bearer(token), []string{"Authorization", "Bearer tok-5f1d8b2a9c3e4d7e"}, http.StatusUnauthorized},
		{"bearer not bearer", ingest.Bearer(token), []string{"Authorization", "Basic " + token}, http.StatusUnauthorized},
		{"bearer of none", ingest.Bearer(), nil, http.StatusUnauthorized},
		{"bearer right", ingest.Bearer("old-token", token), nil, http.StatusOK},
		{"hmac missing", hmacAuth, nil, http.StatusUnauthorized},
		{"hmac wrong", hmacAuth, []string{"X-Signature", hexSig(body + " ")}, http.StatusUnauthorized},
		{"hmac right", hmacAuth, []string{"X-Signature", hexSig(body)}, http.StatusOK},
		{"standard right", std, stdHeaders(body, time.Now()), http.StatusOK},
		{"standard stale", std, stdHeaders(body, time.Now().Add(-time.Hour)), http.StatusUnauthorized},
		{"function", func(r *http.Request, _ []byte) error { return io.EOF }, nil, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, ingest.Options{Authenticate: tc.auth})
			status, resp := f.post(body, tc.headers...)
			assert.Equal(t, tc.want, status)
			assert.Equal(t, tc.want == http.StatusOK, resp.Response.Success)
			if tc.want != http.StatusOK {
				assert.Equal(t, "not authenticated", resp.Response.Message)
				assert.Zero(t, f.published())
			} else {
				assert.EqualValues(t, 1, f.published())
			}
		})
	}
}

func TestIngest_answers_400_for_an_unknown_event(t *testing.T) {
	f := newFixture(t, ingest.Options{Events: []string{"be-observer.catalog_product_create", "be-observer.customer.*"}})
	status, resp := f.post(event("u-1", "be-observer.sales_order_status_update", `{}`))
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, "be-observer.sales_order_status_update", resp.Type)
	assert.False(t, resp.Response.Success)
	assert.Equal(t, `data.event: unknown event "be-observer.sales_order_status_update"`, resp.Response.Message)
	assert.Zero(t, f.published())
	status, _ = f.post(event("u-2", "be-observer.customer.create", `{}`))
	assert.Equal(t, http.StatusOK, status)
	status, _ = f.post(starterKitBody)
	assert.Equal(t, http.StatusOK, status)
}

func TestIngest_answers_400_naming_the_malformed_or_missing_field(t *testing.T) {
	f := newFixture(t, ingest.Options{})
	for _, tc := range []struct{ body, msg string }{
		{`{"data":`, "malformed JSON"},
		{`[1]`, "must be a JSON object"},
		{`{}`, "data: required"},
		{`{"data":null}`, "data: required"},
		{`{"data":[1]}`, "data: must be an object"},
		{`{"data":{}}`, "data.uid: required; data.event: required; data.value: required"},
		{`{"data":{"uid":7,"event":"a.b","value":1}}`, "data.uid: must be a string"},
		{`{"data":{"uid":"","event":"a.b","value":1}}`, "data.uid: required"},
		{`{"data":{"uid":"u","event":"a.b","value":null}}`, "data.value: required"},
		{event("u", "Order Created!", `1`), "data.event: "},
		{event("u u", "order.created", `1`), "data.uid: must not contain spaces or control characters"},
		{event(strings.Repeat("u", 200), "order.created", `1`), "data.uid: longer than 128 bytes"},
	} {
		status, resp := f.post(tc.body)
		assert.Equal(t, http.StatusBadRequest, status, tc.body)
		assert.False(t, resp.Response.Success, tc.body)
		assert.Contains(t, resp.Response.Message, tc.msg, tc.body)
	}
	assert.Zero(t, f.published())
}

func TestIngest_answers_413_for_a_body_over_the_limit(t *testing.T) {
	f := newFixture(t, ingest.Options{MaxBodyBytes: 128})
	status, resp := f.post(event("u-1", "product.created", `"`+strings.Repeat("x", 200)+`"`))
	assert.Equal(t, http.StatusRequestEntityTooLarge, status)
	assert.False(t, resp.Response.Success)
	assert.Zero(t, f.published())
	status, _ = f.post(event("u-1", "product.created", `"small"`))
	assert.Equal(t, http.StatusOK, status)
}

func TestIngest_publishes_a_uid_once_within_the_window(t *testing.T) {
	f := newFixture(t, ingest.Options{DedupeWindow: time.Hour})
	body := event("u-1", "product.created", `{"sku":"A"}`)
	status, resp := f.post(body)
	require.Equal(t, http.StatusOK, status)
	assert.False(t, resp.Response.Duplicate)

	status, resp = f.post(body)
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, ingest.Result{Success: true, Duplicate: true, Message: "Event already published (duplicate uid)"}, resp.Response)
	assert.EqualValues(t, 1, f.published())

	f.tb.Clock.Advance(time.Hour)
	status, resp = f.post(body)
	require.Equal(t, http.StatusOK, status)
	assert.False(t, resp.Response.Duplicate, "the window is over")
	assert.EqualValues(t, 2, f.published())
}

func TestIngest_concurrent_requests_with_one_uid_publish_it_once(t *testing.T) {
	f := newFixture(t, ingest.Options{})
	body := event("u-1", "product.created", `{}`)
	const n = 16
	results := make(chan ingest.Response, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPost, f.URL, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := f.Client().Do(req)
			if !assert.NoError(t, err) {
				return
			}
			defer resp.Body.Close()
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			var out ingest.Response
			assert.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
			results <- out
		}()
	}
	wg.Wait()
	close(results)
	fresh := 0
	for r := range results {
		assert.True(t, r.Response.Success)
		if !r.Response.Duplicate {
			fresh++
		}
	}
	assert.Equal(t, 1, fresh)
	assert.EqualValues(t, 1, f.published())
}

func TestIngest_a_uid_refused_by_the_bus_can_be_sent_again(t *testing.T) {
	f := newFixture(t, ingest.Options{}, func(c *bus.Config) { c.MaxPayloadBytes = 16 })
	status, resp := f.post(event("u-1", "product.created", `{"description":"far too long for the limit"}`))
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, resp.Response.Message, "data.value: ")
	status, resp = f.post(event("u-1", "product.created", `{"sku":"A"}`))
	assert.Equal(t, http.StatusOK, status)
	assert.False(t, resp.Response.Duplicate)
	assert.EqualValues(t, 1, f.published())
}

// The tenant of an event is its caller's, whatever the request says; the
// administrator's events are Options.Tenant's.
func TestIngest_the_tenant_is_the_callers(t *testing.T) {
	f := newFixture(t, ingest.Options{Caller: callers(t, "acme"), Tenant: "default"})
	status, _ := f.post(event("u-1", "product.created", `1`), append(as("acme"), "X-Tenant", "globex")...)
	require.Equal(t, http.StatusOK, status)
	status, _ = f.post(event("u-2", "product.created", `1`))
	require.Equal(t, http.StatusOK, status)
	got := f.sink.WaitFor(t, 2)
	byID := map[string]string{got[0].ID: got[0].Tenant, got[1].ID: got[1].Tenant}
	assert.Equal(t, map[string]string{"acme:u-1": "acme", "default:u-2": "default"}, byID)

	status, resp := f.post(event("u-3", "product.created", `1`), "Authorization", "Bearer tok-globex")
	assert.Equal(t, http.StatusUnauthorized, status)
	assert.False(t, resp.Response.Success)
	assert.EqualValues(t, 2, f.published())
}

// A hook that says nobody called, or names no valid tenant, publishes
// nothing: 403.
func TestIngest_a_caller_that_is_nobody_is_refused(t *testing.T) {
	for _, c := range []access.Caller{{}, access.Tenant("a/b"), access.Tenant("")} {
		f := newFixture(t, ingest.Options{Caller: access.Anyone(c)})
		status, resp := f.post(event("u-1", "product.created", `1`))
		assert.Equal(t, http.StatusForbidden, status, c.String())
		assert.False(t, resp.Response.Success)
		assert.Zero(t, f.published())
	}
}

func TestIngest_only_POST_is_allowed(t *testing.T) {
	f := newFixture(t, ingest.Options{})
	resp, err := f.Client().Get(f.URL)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	assert.Equal(t, "POST", resp.Header.Get("Allow"))
}

func TestIngest_a_closed_bus_answers_503(t *testing.T) {
	f := newFixture(t, ingest.Options{})
	require.NoError(t, f.tb.Close())
	status, resp := f.post(event("u-1", "product.created", `1`))
	assert.Equal(t, http.StatusServiceUnavailable, status)
	assert.False(t, resp.Response.Success)
}

func TestNew_validates_the_options(t *testing.T) {
	tb := bustest.New(t)
	_, err := ingest.New(tb.Bus, ingest.Options{Events: []string{"a..b"}, MaxBodyBytes: -1, Tenant: "a b"})
	require.Error(t, err)
	for _, field := range []string{"Authenticate", "Events[0]", "MaxBodyBytes", "Tenant"} {
		assert.Contains(t, err.Error(), field)
	}
	_, err = ingest.New(tb.Bus, ingest.Options{Caller: access.Anyone(access.Admin())})
	require.NoError(t, err, "a Caller hook authenticates")
	_, err = ingest.HMAC("", "s")
	assert.Error(t, err)
	_, err = ingest.StandardWebhooks()
	assert.Error(t, err)
}

// With a Caller hook, a uid belongs to its tenant: the same uid from two
// tenants is two events with two ids, and a duplicate only within one.
func TestIngest_uids_are_deduplicated_per_tenant(t *testing.T) {
	f := newFixture(t, ingest.Options{Caller: callers(t, "acme", "globex", "default", "acme.eu", "acme-eu"), Tenant: "default"})
	body := event("u-1", "product.created", `{}`)
	for _, tc := range []struct {
		tenant    string
		duplicate bool
	}{
		{"acme", false},
		{"globex", false},
		{"acme", true},
		{"", false}, // the administrator: the default tenant
		{"default", true},
		{"acme.eu", false},
		{"acme-eu", false},
	} {
		var headers []string
		if tc.tenant != "" {
			headers = as(tc.tenant)
		}
		status, resp := f.post(body, headers...)
		require.Equal(t, http.StatusOK, status, tc.tenant)
		assert.Equal(t, tc.duplicate, resp.Response.Duplicate, tc.tenant)
	}
	assert.EqualValues(t, 5, f.published())

	got := map[string]string{}
	for _, e := range f.sink.WaitFor(t, 5) {
		got[e.ID] = e.Tenant
	}
	assert.Equal(t, map[string]string{"acme:u-1": "acme", "globex:u-1": "globex", "default:u-1": "default",
		"acme%2Eeu:u-1": "acme.eu", "acme-eu:u-1": "acme-eu"}, got)

	// The uid's own limits are reported on data.uid, with the prefix's part.
	status, resp := f.post(event(strings.Repeat("u", 125), "product.created", `1`), as("acme")...)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, "data.uid: longer than 128 bytes (in the event id <tenant>:<uid>)", resp.Response.Message)
}

// A bus in a DataDir, restarted: what the last window published is still
// answered as a duplicate, per tenant; older events, other tenants' and the
// application's own are not remembered.
func TestIngest_dedupe_survives_a_restart(t *testing.T) {
	dir := t.TempDir()
	clk := bustest.NewClock(time.Time{})
	openBus := func() *bus.Bus {
		t.Helper()
		b, err := bus.New(bus.Config{DataDir: dir, Clock: clk})
		require.NoError(t, err)
		t.Cleanup(func() { _ = b.Close() })
		return b
	}
	handler := func(b *bus.Bus, opts ingest.Options) http.Handler {
		t.Helper()
		opts.Clock, opts.Events = clk, []string{"be-observer.*"}
		if opts.Caller == nil {
			opts.Authenticate = ingest.AllowAll()
		}
		h, err := ingest.New(b, opts)
		require.NoError(t, err)
		return h
	}
	post := func(h http.Handler, uid string, headers ...string) ingest.Result {
		t.Helper()
		req := httptest.NewRequest(http.MethodPost, "/ingest", strings.NewReader(event(uid, "be-observer.product_save", `{}`)))
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		require.Equal(t, http.StatusOK, rec.Code, "%s", rec.Body)
		var out ingest.Response
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &out))
		return out.Response
	}
	single := ingest.Options{DedupeWindow: time.Hour, Tenant: "shop"}
	multi := ingest.Options{DedupeWindow: time.Hour, Caller: callers(t, "acme.eu", "globex")}

	b := openBus()
	h, hm := handler(b, single), handler(b, multi)
	assert.False(t, post(h, "u-old").Duplicate)
	clk.Advance(50 * time.Minute)
	assert.False(t, post(h, "u-new").Duplicate)
	assert.False(t, post(hm, "u-acme", as("acme.eu")...).Duplicate)
	require.NoError(t, b.Publish(context.Background(),
		bus.Event{ID: "u-other", Name: "be-observer.product_save", Tenant: "other"},
		bus.Event{ID: "u-app", Name: "order.created", Tenant: "shop"}))
	require.NoError(t, b.Close())
	head := b.Events().Head()

	clk.Advance(20 * time.Minute) // u-old is 70 minutes old, u-new 20
	b = openBus()
	h = handler(b, single)
	assert.True(t, post(h, "u-new").Duplicate, "published within the window, before the restart")
	assert.False(t, post(h, "u-old").Duplicate, "older than the window")
	assert.False(t, post(h, "u-other").Duplicate, "another tenant's event is not ours")
	assert.False(t, post(h, "u-app").Duplicate, "nor is an event outside Events")
	assert.Equal(t, head+3, b.Events().Head())

	hm = handler(b, multi)
	assert.True(t, post(hm, "u-acme", as("acme.eu")...).Duplicate)
	assert.False(t, post(hm, "u-acme", as("globex")...).Duplicate)
	assert.True(t, post(hm, "u-acme", as("globex")...).Duplicate)
}

// DedupeSize bounds what New reads back too: the most recent are kept.
func TestIngest_dedupe_read_back_keeps_the_newest_within_the_size(t *testing.T) {
	tb := bustest.New(t)
	for _, uid := range []string{"u-1", "u-2", "u-3"} {
		tb.MustPublish(bus.Event{ID: uid, Name: "product.created", Payload: json.RawMessage(`1`)})
		tb.Clock.Advance(time.Second)
	}
	h, err := ingest.New(tb.Bus, ingest.Options{Authenticate: ingest.AllowAll(), Clock: tb.Clock, DedupeSize: 2})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, tc := range []struct {
		uid       string
		duplicate bool
	}{{"u-3", true}, {"u-2", true}, {"u-1", false}} {
		resp, err := srv.Client().Post(srv.URL, "application/json", strings.NewReader(event(tc.uid, "product.created", `1`)))
		require.NoError(t, err)
		var out ingest.Response
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
		resp.Body.Close()
		assert.Equal(t, tc.duplicate, out.Response.Duplicate, tc.uid)
	}
}

// A value nesting deeper than the bus takes is refused at the door, 400
// naming data.value, and nothing is published.
func TestIngest_refuses_deeply_nested_values(t *testing.T) {
	f := newFixture(t, ingest.Options{})
	for _, depth := range []int{101, 9998} {
		value := strings.Repeat("[", depth) + strings.Repeat("]", depth)
		status, resp := f.post(event("deep-"+strconv.Itoa(depth), "product.created", value))
		assert.Equal(t, http.StatusBadRequest, status)
		assert.Contains(t, resp.Response.Message, "data.value: nests arrays and objects deeper than 100 levels")
	}
	status, _ := f.post(event("deep-100", "product.created", strings.Repeat("[", 100)+strings.Repeat("]", 100)))
	assert.Equal(t, http.StatusOK, status)
	assert.EqualValues(t, 1, f.published())
}

// The same uid sent with another event or value within the window is a
// conflict, 409 naming it, not a duplicate: called a duplicate, that event
// would be lost without a word. The same holds after a restart, from the
// journal.
func TestIngest_same_uid_with_another_event_is_a_conflict(t *testing.T) {
	f := newFixture(t, ingest.Options{})
	status, _ := f.post(event("u-1", "product.created", `{"sku":"A"}`))
	require.Equal(t, http.StatusOK, status)
	status, resp := f.post(event("u-1", "product.created", `{ "sku" : "A" }`))
	assert.Equal(t, http.StatusOK, status, "the same value, spelled otherwise")
	assert.True(t, resp.Response.Duplicate)

	for _, body := range []string{event("u-1", "product.created", `{"sku":"B"}`), event("u-1", "product.deleted", `{"sku":"A"}`)} {
		status, resp = f.post(body)
		assert.Equal(t, http.StatusConflict, status, body)
		assert.False(t, resp.Response.Success)
		assert.Contains(t, resp.Response.Message, "data.uid: already published")
	}
	assert.EqualValues(t, 1, f.published())

	// A handler started on the same journal knows it too.
	h, err := ingest.New(f.tb.Bus, ingest.Options{Authenticate: ingest.AllowAll(), Clock: f.tb.Clock})
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", strings.NewReader(event("u-1", "product.created", `{"sku":"B"}`))))
	assert.Equal(t, http.StatusConflict, rec.Code, rec.Body.String())
}
