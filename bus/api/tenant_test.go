package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/access"
	"github.com/sinkbus/sinkbus/bus/api"
)

// Markers of globex's integrations and events: no answer to acme may hold
// one.
const (
	globexName     = "globex-secret-name-71c"
	globexRejected = "g-rej-9f2"
	globexPayload  = "globex-payload-4e8"
	tenantSecret   = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
)

// tenantsServer is the API of a bus holding two tenants' integrations,
// called with the bearer tokens of the administrator ("admin-token"),
// acme ("acme-token") and globex ("globex-token").
type tenantsServer struct {
	*server
	globex *receiver
}

func newTenantsServer(t testing.TB) *tenantsServer {
	t.Helper()
	who, err := access.Bearer(map[string]access.Caller{
		"admin-token": access.Admin(), "acme-token": access.Tenant("acme"), "globex-token": access.Tenant("globex"),
	})
	require.NoError(t, err)
	// The wall clock: the receivers check the signatures' timestamps.
	s := &tenantsServer{server: newServer(t, api.Options{Caller: who}, func(c *bus.Config) { c.Clock = nil })}
	s.globex = newReceiver(t, tenantSecret)
	acme := newReceiver(t, tenantSecret)
	hook := func(id, name, url string) string {
		return `{"id":"` + id + `","name":"` + name + `","integration_type":"webhook","observes":["order.*"],
		  "configuration":{"url":"` + url + `","secret_key":"` + tenantSecret + `","allow_private_networks":true}}`
	}
	for _, c := range []struct{ path, body, token string }{
		{"/tenants/globex/integrations", hook("erp-sync", globexName, s.globex.URL), "admin-token"},
		{"/integrations", hook("warehouse", globexName, s.globex.URL+"/warehouse"), "globex-token"},
		{"/integrations", hook("erp-sync", "acme's", acme.URL), "acme-token"},
		{"/integrations", hook("erp-sync", "the application's", acme.URL+"/app"), "admin-token"},
	} {
		resp := s.do("POST", c.path, c.body, "Authorization", "Bearer "+c.token)
		require.Equal(t, http.StatusCreated, resp.status, "%s", resp.body)
	}
	// A rejected event of globex's erp-sync.
	s.globex.status.Store(http.StatusBadRequest)
	s.tb.MustPublish(bus.Event{ID: globexRejected, Name: "order.created", Tenant: "globex",
		Payload: json.RawMessage(`{"marker":"` + globexPayload + `"}`)})
	s.globex.wait(t, 2) // erp-sync's and warehouse's attempts
	for _, ref := range []string{"globex/erp-sync", "globex/warehouse"} {
		eventually(t, func() bool {
			r, err := s.tb.Integrations().Rejected(ctx, ref)
			lag, _ := s.tb.Integrations().Lag(ctx, ref)
			return err == nil && len(r) == 1 && lag == 0
		}, "globex's event is rejected, and settled")
	}
	s.globex.status.Store(http.StatusNoContent)
	return s
}

// globexState is everything the bus tells of globex's integrations, and
// what its receiver got: what no request of acme's may change.
func (s *tenantsServer) globexState(t testing.TB) string {
	t.Helper()
	m := s.tb.Integrations().Tenant("globex")
	list, err := m.List(ctx)
	require.NoError(t, err)
	state := map[string]any{"list": list, "delivered": s.globex.delivered(), "head": s.tb.Events().Head()}
	for _, in := range list {
		entries, err := m.Log(ctx, in.ID)
		require.NoError(t, err)
		rejected, err := m.Rejected(ctx, in.ID)
		require.NoError(t, err)
		circuit, err := m.Circuit(ctx, in.ID)
		require.NoError(t, err)
		lag, err := m.Lag(ctx, in.ID)
		require.NoError(t, err)
		cursor, _ := s.tb.Events().Cursor(in.Ref())
		state[in.ID] = []any{entries, rejected, circuit, lag, cursor}
	}
	data, err := json.Marshal(state)
	require.NoError(t, err)
	return string(data)
}

// integrationRoutes are the routes on one integration, {I} standing for its
// path and {E} for a rejected event's id.
var integrationRoutes = []struct{ method, path, body string }{
	{"GET", "{I}", ""},
	{"PATCH", "{I}", `{"name":"taken over"}`},
	{"DELETE", "{I}", ""},
	{"POST", "{I}/start", ""},
	{"POST", "{I}/stop", ""},
	{"GET", "{I}/log", ""},
	{"GET", "{I}/rejected_events", ""},
	{"GET", "{I}/rejected_events/{E}", ""},
	{"DELETE", "{I}/rejected_events/{E}", ""},
	{"POST", "{I}/rejected_events/{E}/retry", ""},
	{"GET", "{I}/circuit", ""},
	{"POST", "{I}/circuit/reset", ""},
	{"POST", "{I}/replay", `{}`},
	{"POST", "{I}/replay", `{"dry_run":true}`},
}

// answer is a response without its request id, for comparing two.
func answer(r response) string {
	return strconv.Itoa(r.status) + " " + strings.ReplaceAll(string(r.body), r.header.Get(api.RequestIDHeader), "")
}

// Every route, called with acme's credentials on one of globex's
// integrations, however it names it, answers 404 as for an integration
// that does not exist (the same answer, word for word), and changes
// nothing of globex's. The administrator reaches each of them.
func TestAPI_a_tenant_reaches_nothing_of_another_tenants(t *testing.T) {
	s := newTenantsServer(t)
	before := s.globexState(t)

	// Each spelling of a globex integration, beside the same spelling of
	// one that does not exist.
	spellings := [][2]string{
		{"/tenants/globex/integrations/erp-sync", "/tenants/initech/integrations/erp-sync"},
		{"/integrations/globex%2Ferp-sync", "/integrations/initech%2Ferp-sync"},
		{"/integrations/warehouse", "/integrations/nothing"},
		{"/tenants/globex/integrations/warehouse", "/tenants/globex/integrations/nothing"},
	}
	acme := []string{"Authorization", "Bearer acme-token"}
	for _, sp := range spellings {
		for _, rt := range integrationRoutes {
			path := strings.NewReplacer("{I}", sp[0], "{E}", globexRejected).Replace(rt.path)
			ghost := strings.NewReplacer("{I}", sp[1], "{E}", globexRejected).Replace(rt.path)
			got := s.do(rt.method, path, rt.body, acme...)
			require.Equal(t, http.StatusNotFound, got.status, "%s %s: %s", rt.method, path, got.body)
			assert.Equal(t, "integration_not_found", got.errorBody(t).ErrorCode)
			want := s.do(rt.method, ghost, rt.body, acme...)
			same := strings.NewReplacer("initech", "globex", "nothing", "warehouse").Replace(answer(want))
			assert.Equal(t, same, answer(got), "%s %s answers as for one that does not exist", rt.method, path)
			for _, marker := range []string{globexName, globexRejected + `"`, globexPayload, s.globex.URL} {
				assert.NotContains(t, string(got.body), marker)
			}
		}
	}
	// The collection of globex's integrations: not listed, not created in.
	for _, rt := range []struct{ method, body string }{{"GET", ""}, {"POST", `{"id":"spy","integration_type":"webhook",
		"configuration":{"url":"https://spy.example.com"}}`}} {
		got := s.do(rt.method, "/tenants/globex/integrations", rt.body, acme...)
		require.Equal(t, http.StatusNotFound, got.status, "%s: %s", rt.method, got.body)
		want := s.do(rt.method, "/tenants/initech/integrations", rt.body, acme...)
		assert.Equal(t, answer(want), answer(got))
	}
	// A body naming globex is refused, naming the field.
	got := s.do("POST", "/integrations", `{"id":"spy","tenant":"globex","integration_type":"webhook",
		"configuration":{"url":"https://spy.example.com"}}`, acme...)
	require.Equal(t, http.StatusBadRequest, got.status, "%s", got.body)
	assert.Equal(t, []string{"tenant"}, fieldsOf(got.errorBody(t)))
	got = s.do("PATCH", "/integrations/erp-sync", `{"tenant":"globex"}`, acme...)
	require.Equal(t, http.StatusConflict, got.status, "%s", got.body)
	// acme's list holds acme's alone.
	list := s.do("GET", "/integrations", "", acme...).object(t)["integrations"].([]any)
	require.Len(t, list, 1)
	assert.Equal(t, "acme", list[0].(map[string]any)["tenant"])

	assert.Equal(t, before, s.globexState(t), "nothing of globex's changed")

	// The administrator reaches every route (so the paths above are the
	// right ones), and the application's list holds every tenant's.
	admin := []string{"Authorization", "Bearer admin-token"}
	assert.Len(t, s.do("GET", "/integrations", "", admin...).object(t)["integrations"], 4)
	assert.Equal(t, http.StatusOK, s.do("GET", "/tenants/globex/integrations", "", admin...).status)
	for _, rt := range integrationRoutes {
		for _, prefix := range []string{"/tenants/globex/integrations/erp-sync", "/integrations/globex%2Ferp-sync"} {
			fresh := newTenantsServer(t) // each route on the state it needs
			path := strings.NewReplacer("{I}", prefix, "{E}", globexRejected).Replace(rt.path)
			got := fresh.do(rt.method, path, rt.body, admin...)
			assert.Less(t, got.status, 300, "%s %s: %s", rt.method, path, got.body)
		}
	}
}

// Elastic Path's links.self names a tenant's integration where both the
// administrator and the tenant reach it.
func TestAPI_links_of_a_tenants_integration(t *testing.T) {
	s := newTenantsServer(t)
	for _, token := range []string{"admin-token", "globex-token"} {
		got := s.do("GET", "/tenants/globex/integrations/erp-sync?format=elastic_path", "", "Authorization", "Bearer "+token)
		require.Equal(t, http.StatusOK, got.status, "%s", got.body)
		self := got.data(t)["links"].(map[string]any)["self"].(string)
		assert.Equal(t, s.URL+"/v2/tenants/globex/integrations/erp-sync", self)
		again := s.do("GET", strings.TrimPrefix(self, s.URL+"/v2"), "", "Authorization", "Bearer "+token)
		assert.Equal(t, http.StatusOK, again.status)
	}
}

// FuzzAPI_tenant_paths sends acme's requests down any path, with any
// method and body: no answer holds anything of globex's, none is a 5xx,
// and globex's integrations are as they were.
func FuzzAPI_tenant_paths(f *testing.F) {
	for _, path := range []string{
		"/tenants/globex/integrations/erp-sync", "/tenants/Globex/integrations/erp-sync", "/tenants/GLOBEX/integrations",
		"/tenants/globex%2F/integrations", "/integrations/globex%2Ferp-sync", "/integrations/globex%252Ferp-sync",
		"/integrations/..%2Ftenants%2Fglobex%2Fintegrations%2Ferp-sync", "/tenants/acme/../globex/integrations/erp-sync",
		"//tenants/globex/integrations/erp-sync", "/tenants/globex;/integrations/erp-sync", "/tenants/globex./integrations",
		"/tenants/globex%00/integrations/erp-sync", "/integrations/erp-sync%2F..%2F..%2Ftenants%2Fglobex",
		"/tenants/acme/integrations/..%2F..%2Fglobex%2Fintegrations%2Ferp-sync", "/tenants/%67lobex/integrations/erp-sync",
		"/integrations/warehouse", "/integrations/WAREHOUSE", "/integrations/warehouse%20", "/tenants/globex/integrations/warehouse/log",
		"/tenants/acme%2Fglobex/integrations", "/tenants/globex\\/integrations/erp-sync", "/integrations/globex\\erp-sync",
		"/tenants/globex/integrations/erp-sync/rejected_events/" + globexRejected,
		"/integrations/globex%2Ferp-sync/rejected_events/" + globexRejected + "/retry",
		"/tenants/%20globex/integrations/erp-sync/circuit/reset", "/tenants/globex%09/integrations/erp-sync/replay",
	} {
		for _, method := range []string{"GET", "POST", "PATCH", "DELETE"} {
			f.Add(method, path, "")
		}
		f.Add("POST", path, `{"dry_run":true}`)
		f.Add("PATCH", path, `{"name":"taken over","tenant":"acme"}`)
	}
	f.Add("POST", "/integrations", `{"id":"spy","tenant":"globex","integration_type":"bustest"}`)
	f.Add("POST", "/tenants/globex/integrations", `{"id":"spy","integration_type":"bustest"}`)

	s := newTenantsServer(f)
	before := s.globexState(f)
	f.Fuzz(func(t *testing.T, method, path, body string) {
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		req, err := http.NewRequest(method, "http://shop.test"+path, strings.NewReader(body))
		if err != nil {
			return // not a request a client can send
		}
		req.Header.Set("Authorization", "Bearer acme-token")
		rec := httptest.NewRecorder()
		s.handler.ServeHTTP(rec, req)
		resp := rec.Result()
		got, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 500 {
			t.Fatalf("%s %q answered %d: %s", method, path, resp.StatusCode, got)
		}
		for _, marker := range []string{globexName, globexRejected, globexPayload, s.globex.URL} {
			if bytes.Contains(got, []byte(marker)) && !strings.Contains(path+body, marker) {
				t.Fatalf("%s %q answered globex's %q: %s", method, path, marker, got)
			}
		}
		if after := s.globexState(t); after != before {
			t.Fatalf("%s %q changed globex's integrations:\n%s\n%s", method, path, before, after)
		}
	})
}
