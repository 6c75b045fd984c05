package admin_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/access"
	"github.com/sinkbus/sinkbus/bus/admin"
	"github.com/sinkbus/sinkbus/bus/bustest"
	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/sinks/webhook"
)

var ctx = context.Background()

// rejectAtOnce rejects an event at its first failure.
var rejectAtOnce = middleware.Settings{Retry: middleware.RetryPolicy{MaxAttempts: 1}}

// fixture is a running in-memory bus with its admin page.
type fixture struct {
	tb       *bustest.Bus
	activity *admin.Activity
	page     http.Handler
}

func newFixture(t *testing.T, caller access.Identify) *fixture {
	t.Helper()
	f := &fixture{activity: admin.NewActivity()}
	f.tb = bustest.New(t, func(c *bus.Config) { c.Observer = bus.Observers(f.activity) })
	var err error
	f.page, err = admin.New(f.tb.Bus, admin.Options{Caller: caller, Activity: f.activity,
		Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	return f
}

// get asks the page for path and returns the status and the body.
func (f *fixture) get(t *testing.T, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	f.page.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

// post submits a form to path as the page's own buttons do (same origin).
func (f *fixture) post(t *testing.T, path string, form url.Values) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	rec := httptest.NewRecorder()
	f.page.ServeHTTP(rec, req)
	return rec
}

// settled waits until integration id has nothing left to deliver.
func settled(t *testing.T, m *bus.Integrations, id string) {
	t.Helper()
	require.Eventually(t, func() bool {
		lag, err := m.Lag(ctx, id)
		return err == nil && lag == 0
	}, 10*time.Second, time.Millisecond)
}

// text is the page's text with tags and runs of white space removed, for
// assertions on what a reader sees.
func text(html string) string {
	html = regexp.MustCompile(`(?s)<[^>]*>`).ReplaceAllString(html, " ")
	return strings.Join(strings.Fields(html), " ")
}

// The list shows each integration with its state, lag, deliveries and
// failures of the last hour and its last error; the page is HTML served
// with a policy that allows no foreign script, style or frame.
func TestList_shows_state_lag_counts_and_last_error(t *testing.T) {
	f := newFixture(t, access.Anyone(access.Admin()))
	f.tb.NewSinkIntegration(bus.Integration{ID: "ok", Name: "Warehouse"})
	down := f.tb.NewSinkIntegration(bus.Integration{ID: "down", Name: "ERP", Delivery: rejectAtOnce})
	f.tb.NewSinkIntegration(bus.Integration{ID: "off", Name: "Archive", Status: bus.Stopped})
	down.FailNext(1, 422)
	f.tb.MustPublish(bus.Event{Name: "order.created"}, bus.Event{Name: "order.created"})
	settled(t, f.tb.Integrations(), "ok")
	settled(t, f.tb.Integrations(), "down")

	rec := httptest.NewRecorder()
	f.page.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, "text/html; charset=utf-8", rec.Header().Get("Content-Type"))
	csp := rec.Header().Get("Content-Security-Policy")
	assert.Contains(t, csp, "script-src 'self'")
	assert.Contains(t, csp, "frame-ancestors 'none'")
	assert.Equal(t, "DENY", rec.Header().Get("X-Frame-Options"))
	body := rec.Body.String()
	assert.NotContains(t, body, "<script>", "no inline script: the policy allows none")

	rows := map[string]string{}
	for _, tr := range regexp.MustCompile(`(?s)<tr>(.*?)</tr>`).FindAllStringSubmatch(body, -1) {
		if m := regexp.MustCompile(`href="integrations/([^"]+)"`).FindStringSubmatch(tr[1]); m != nil {
			rows[m[1]] = text(tr[1])
		}
	}
	require.Len(t, rows, 3, body)
	// Name, id, type, observes, state, lag, delivered, failed, last error.
	assert.Equal(t, "Warehouse ok bustest every event running 0 2 0 none", rows["ok"])
	assert.Regexp(t, `^ERP down bustest every event running 0 1 1 \S+ \S+ .*422`, rows["down"])
	assert.Equal(t, "Archive off bustest every event stopped 2 0 0 none", rows["off"])
	assert.Contains(t, body, `data-refresh="5000"`, "the page refreshes itself every DefaultRefresh")
}

// The configuration is the API's, its secrets masked: neither the signing
// secret nor a token in the URL reaches the page.
func TestIntegration_masks_secrets(t *testing.T) {
	f := newFixture(t, access.Anyone(access.Admin()))
	f.tb.Create(bus.Integration{ID: "erp", Name: "ERP", Sink: webhook.Config{
		URL:       "https://erp.example.com/hook?token=tok-live-secret-9876",
		SecretKey: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
		APIKey:    "api-key-secret-5555",
	}, Status: bus.Stopped})
	code, body := f.get(t, "/integrations/erp")
	require.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, body, "erp.example.com")
	for _, secret := range []string{"tok-live-secret", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "api-key-secret"} {
		assert.NotContains(t, body, secret)
	}
	assert.Contains(t, body, "****")
}

// Whatever an integration holds is text on the page, never markup.
func TestPages_escape_what_integrations_hold(t *testing.T) {
	f := newFixture(t, access.Anyone(access.Admin()))
	f.tb.NewSinkIntegration(bus.Integration{ID: "x", Name: `<script>alert("name")</script>`,
		Description: `<img src=x onerror=alert(1)>`, Status: bus.Stopped})
	for _, path := range []string{"/", "/integrations/x"} {
		_, body := f.get(t, path)
		assert.NotContains(t, body, `<script>alert`, path)
		assert.NotContains(t, body, `<img src=x`, path)
		assert.Contains(t, body, `&lt;script&gt;alert(&#34;name&#34;)&lt;/script&gt;`, path)
	}
}

// A form posted from another site is refused before anything runs, by
// the browser's Sec-Fetch-Site or, without it, by Origin; the page's own
// buttons stop and start the integration, answered with a redirect back.
func TestActions_refuse_cross_site_requests(t *testing.T) {
	f := newFixture(t, access.Anyone(access.Admin()))
	f.tb.NewSinkIntegration(bus.Integration{ID: "erp"})
	stop := url.Values{"do": {"stop"}}.Encode()
	for name, header := range map[string]http.Header{
		"Sec-Fetch-Site": {"Sec-Fetch-Site": {"cross-site"}},
		"Origin":         {"Origin": {"https://evil.example"}},
		"same-site":      {"Sec-Fetch-Site": {"same-site"}},
	} {
		req := httptest.NewRequest(http.MethodPost, "/integrations/erp", strings.NewReader(stop))
		req.Header = header
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		f.page.ServeHTTP(rec, req)
		assert.Equal(t, http.StatusForbidden, rec.Code, name)
		assert.Contains(t, text(rec.Body.String()), "came from another site", name)
		in, err := f.tb.Integrations().Get(ctx, "erp")
		require.NoError(t, err)
		assert.Equal(t, bus.Running, in.Status, "%s: nothing changed", name)
	}

	rec := f.post(t, "/integrations/erp", url.Values{"do": {"stop"}})
	assert.Equal(t, http.StatusSeeOther, rec.Code, rec.Body.String())
	assert.Equal(t, "erp?done=stopped", rec.Header().Get("Location"))
	in, _ := f.tb.Integrations().Get(ctx, "erp")
	assert.Equal(t, bus.Stopped, in.Status)
	_, body := f.get(t, "/integrations/erp?done=stopped")
	assert.Contains(t, body, "The integration was stopped")
	assert.Contains(t, body, `value="start"`)

	rec = f.post(t, "/integrations/erp", url.Values{"do": {"start"}})
	assert.Equal(t, "erp?done=started", rec.Header().Get("Location"))
	in, _ = f.tb.Integrations().Get(ctx, "erp")
	assert.Equal(t, bus.Running, in.Status)

	rec = f.post(t, "/integrations/erp", url.Values{"do": {"explode"}})
	assert.Equal(t, http.StatusBadRequest, rec.Code)
	assert.Contains(t, text(rec.Body.String()), "do: must be start, stop, reset, retry, delete, count or replay")
}

// The page asks the application's hook who calls, as the API does: no
// caller is 401, a refusal or a caller that is nobody 403, before
// anything is shown.
func TestPages_need_a_caller(t *testing.T) {
	for name, c := range map[string]struct {
		hook access.Identify
		want int
	}{
		"unauthenticated": {func(*http.Request) (access.Caller, error) { return access.Caller{}, access.ErrUnauthenticated }, 401},
		"refused":         {func(*http.Request) (access.Caller, error) { return access.Caller{}, errors.New("banned") }, 403},
		"nobody":          {access.Anyone(access.Caller{}), 403},
	} {
		f := newFixture(t, c.hook)
		f.tb.NewSinkIntegration(bus.Integration{ID: "erp", Name: "Secret ERP"})
		for _, path := range []string{"/", "/integrations/erp"} {
			code, body := f.get(t, path)
			assert.Equal(t, c.want, code, "%s %s", name, path)
			assert.NotContains(t, body, "Secret ERP")
		}
		rec := f.post(t, "/integrations/erp", url.Values{"do": {"stop"}})
		assert.Equal(t, c.want, rec.Code, name)
		in, _ := f.tb.Integrations().Get(ctx, "erp")
		assert.Equal(t, bus.Running, in.Status, name)
	}
	_, err := admin.New(bustest.New(t).Bus, admin.Options{})
	assert.ErrorContains(t, err, "Caller: required")
}

// A tenant sees and changes its own integrations only, by id, as on the
// API; another tenant's are not found, whatever is asked of them. The
// administrator sees every one, by ref.
func TestPages_keep_each_tenant_to_its_own(t *testing.T) {
	f := newFixture(t, func(r *http.Request) (access.Caller, error) {
		if r.Header.Get("X-Who") == "admin" {
			return access.Admin(), nil
		}
		return access.Tenant("acme"), nil
	})
	f.tb.NewSinkIntegration(bus.Integration{ID: "erp", Tenant: "acme", Name: "Acme ERP"})
	f.tb.NewSinkIntegration(bus.Integration{ID: "erp", Tenant: "globex", Name: "Globex ERP"})

	code, body := f.get(t, "/")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "Acme ERP")
	assert.NotContains(t, body, "Globex")
	assert.Contains(t, body, `href="integrations/erp"`)

	for _, path := range []string{"/integrations/globex%2Ferp", "/integrations/..%2Fglobex%2Ferp"} {
		code, body = f.get(t, path)
		assert.Equal(t, http.StatusNotFound, code, path)
		assert.NotContains(t, body, "Globex", path)
		rec := f.post(t, path, url.Values{"do": {"stop"}})
		assert.Equal(t, http.StatusNotFound, rec.Code, path)
	}
	in, err := f.tb.Integrations().Get(ctx, "globex/erp")
	require.NoError(t, err)
	assert.Equal(t, bus.Running, in.Status, "another tenant's integration did not stop")

	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("X-Who", "admin")
	f.page.ServeHTTP(rec, req)
	assert.Contains(t, rec.Body.String(), `href="integrations/acme%2Ferp"`)
	assert.Contains(t, rec.Body.String(), `href="integrations/globex%2Ferp"`)
	req = httptest.NewRequest(http.MethodGet, "/integrations/globex%2Ferp", nil)
	req.Header.Set("X-Who", "admin")
	rec = httptest.NewRecorder()
	f.page.ServeHTTP(rec, req)
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Contains(t, rec.Body.String(), "Globex ERP")
}

// A rejected event is listed with its reason, status code and attempts;
// a retry that fails says why (the API's answer, 502), one that delivers
// takes it off the list, and delete forgets another.
func TestRejected_events_retry_and_delete(t *testing.T) {
	f := newFixture(t, access.Anyone(access.Admin()))
	s := f.tb.NewSinkIntegration(bus.Integration{ID: "erp", Delivery: rejectAtOnce})
	s.FailNext(2, 422)
	f.tb.MustPublish(bus.Event{ID: "ev-1", Name: "order.created"}, bus.Event{ID: "ev-2", Name: "order.cancelled"})
	settled(t, f.tb.Integrations(), "erp")

	_, body := f.get(t, "/integrations/erp")
	page := text(body)
	assert.Contains(t, page, "Rejected events (2)")
	assert.Regexp(t, `order.created ev-1 .*422\) 422 1 \d{4}-\d\d-\d\d`, page)

	s.FailNext(1, 422)
	rec := f.post(t, "/integrations/erp", url.Values{"do": {"retry"}, "event": {"ev-1"}})
	assert.Equal(t, http.StatusBadGateway, rec.Code)
	assert.Contains(t, text(rec.Body.String()), "502: the destination refused the event")
	assert.Contains(t, text(rec.Body.String()), "Rejected events (2)")

	rec = f.post(t, "/integrations/erp", url.Values{"do": {"retry"}, "event": {"ev-1"}})
	assert.Equal(t, http.StatusSeeOther, rec.Code, rec.Body.String())
	assert.Equal(t, "erp?done=retried", rec.Header().Get("Location"))
	rec = f.post(t, "/integrations/erp", url.Values{"do": {"delete"}, "event": {"ev-2"}})
	assert.Equal(t, "erp?done=deleted", rec.Header().Get("Location"))
	_, body = f.get(t, "/integrations/erp")
	assert.Contains(t, text(body), "Rejected events (0)")
	assert.Len(t, s.Events(), 1)

	rec = f.post(t, "/integrations/erp", url.Values{"do": {"retry"}, "event": {"ev-2"}})
	assert.Equal(t, http.StatusNotFound, rec.Code)
}

// A dry run shows the count and a button to replay those events; the
// replay is answered with a redirect to its progress, which the log
// tells.
func TestReplay_dry_run_then_replay(t *testing.T) {
	f := newFixture(t, access.Anyone(access.Admin()))
	s := f.tb.NewSinkIntegration(bus.Integration{ID: "erp", Observes: []string{"order.*"}})
	f.tb.MustPublish(bus.Event{Name: "order.created"}, bus.Event{Name: "order.created"}, bus.Event{Name: "customer.created"})
	s.WaitFor(t, 2)

	rec := f.post(t, "/integrations/erp", url.Values{"do": {"count"}, "from": {""}, "to": {""}})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	page := text(rec.Body.String())
	assert.Contains(t, page, "2 events would be delivered")
	assert.Contains(t, rec.Body.String(), `value="replay">Replay 2 events`)

	rec = f.post(t, "/integrations/erp", url.Values{"do": {"replay"}})
	require.Equal(t, http.StatusSeeOther, rec.Code, rec.Body.String())
	assert.Equal(t, "erp?done=replay&replay=replay-1#replays", rec.Header().Get("Location"))
	s.WaitFor(t, 4)
	require.Eventually(t, func() bool {
		_, body := f.get(t, "/integrations/erp?replay=replay-1")
		return strings.Contains(text(body), "replay-1 completed")
	}, 10*time.Second, 10*time.Millisecond)
	_, body := f.get(t, "/integrations/erp?replay=replay-1")
	assert.Contains(t, body, `<tr class="highlight">`)
	assert.Contains(t, text(body), "2 matching events published")

	rec = f.post(t, "/integrations/erp", url.Values{"do": {"count"}, "from": {"yesterday"}, "to": {"2026-01-01T00:00"}})
	assert.Equal(t, http.StatusBadRequest, rec.Code)
	assert.Contains(t, text(rec.Body.String()), "from: must be a date and time")
	assert.Contains(t, rec.Body.String(), `value="yesterday"`, "the form keeps what was typed")
	rec = f.post(t, "/integrations/erp", url.Values{"do": {"count"}, "from": {"2026-01-02T00:00"}, "to": {"2026-01-01T00:00:00"}})
	assert.Equal(t, http.StatusBadRequest, rec.Code)
	assert.Contains(t, text(rec.Body.String()), "to: must be after from")
}

// The stylesheet and script come from the binary.
func TestStatic_files_are_served(t *testing.T) {
	f := newFixture(t, access.Anyone(access.Admin()))
	for path, typ := range map[string]string{"/static/admin.js": "javascript", "/static/admin.css": "text/css"} {
		rec := httptest.NewRecorder()
		f.page.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		require.Equal(t, http.StatusOK, rec.Code, path)
		assert.Contains(t, rec.Header().Get("Content-Type"), typ, path)
		b, _ := io.ReadAll(rec.Body)
		assert.NotEmpty(t, b)
	}
}

// The page and the command that mounts it link no browser driver:
// chromedp is for the browser tests alone.
func TestAdmin_links_no_browser_driver(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH")
	}
	out, err := exec.Command(gobin, "list", "-deps", "github.com/sinkbus/sinkbus/bus/admin",
		"github.com/sinkbus/sinkbus/examples/server").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.NotContains(t, string(out), "chromedp")
}

// A temporary integration that delivered its range is completed; one
// stopped by hand is stopped.
func TestList_tells_completed_from_stopped(t *testing.T) {
	f := newFixture(t, access.Anyone(access.Admin()))
	start := f.tb.Clock.Now()
	f.tb.MustPublish(bus.Event{Name: "order.created"})
	f.tb.Clock.Advance(time.Hour)
	f.tb.NewSinkIntegration(bus.Integration{ID: "done", Kind: bus.Temporary,
		StartsAt: start.Add(-time.Minute), EndsAt: start.Add(time.Minute)})
	f.tb.NewSinkIntegration(bus.Integration{ID: "halted", Kind: bus.Temporary,
		StartsAt: start.Add(-time.Minute), EndsAt: start.Add(2 * time.Hour)}) // not over yet
	require.Eventually(t, func() bool {
		in, err := f.tb.Integrations().Get(ctx, "done")
		return err == nil && in.Status == bus.Stopped
	}, 10*time.Second, time.Millisecond)
	_, err := f.tb.Integrations().Stop(ctx, "halted")
	require.NoError(t, err)

	_, body := f.get(t, "/")
	page := text(body)
	assert.Contains(t, page, "done bustest every event completed")
	assert.Contains(t, page, "halted bustest every event stopped")
}

// An open circuit shows when it opened and when it probes next; the
// page's reset closes it.
func TestCircuit_shows_and_resets(t *testing.T) {
	f := newFixture(t, access.Anyone(access.Admin()))
	s := f.tb.NewSinkIntegration(bus.Integration{ID: "erp", Delivery: middleware.Settings{
		Breaker: middleware.BreakerPolicy{WarnAfter: 1, OpenAfter: 1}}})
	s.FailNext(100, 503)
	f.tb.MustPublish(bus.Event{Name: "order.created"})
	require.Eventually(t, func() bool {
		st, err := f.tb.Integrations().Circuit(ctx, "erp")
		return err == nil && st.State == middleware.StateOpen
	}, 10*time.Second, time.Millisecond)

	_, body := f.get(t, "/integrations/erp")
	page := text(body)
	assert.Contains(t, page, "Status paused: circuit open")
	assert.Regexp(t, `State open Consecutive failures \d+ Opened \S+ \S+ Next probe \S+ \S+ \(0 failed so far\)`, page)
	assert.NotContains(t, body, `value="reset" disabled`)

	rec := f.post(t, "/integrations/erp", url.Values{"do": {"reset"}})
	assert.Equal(t, "erp?done=reset", rec.Header().Get("Location"))
	// The waiting event's next attempt may open it again at once.
	log, err := f.tb.Integrations().Log(ctx, "erp")
	require.NoError(t, err)
	actions := make([]string, len(log))
	for i, e := range log {
		actions[i] = e.Action
	}
	assert.Contains(t, actions, middleware.ActionCircuitReset)
}

// A dry run counts the range the form gives, its times in UTC with or
// without seconds.
func TestReplay_counts_the_range_of_the_form(t *testing.T) {
	f := newFixture(t, access.Anyone(access.Admin()))
	s := f.tb.NewSinkIntegration(bus.Integration{ID: "erp"})
	t0 := f.tb.Clock.Now().UTC()
	f.tb.MustPublish(bus.Event{Name: "order.created"})
	f.tb.Clock.Advance(time.Hour)
	f.tb.MustPublish(bus.Event{Name: "order.created"}, bus.Event{Name: "order.created"})
	s.WaitFor(t, 3)

	for form, want := range map[[2]string]string{
		{t0.Add(time.Minute).Format("2006-01-02T15:04"), ""}:                                  "2 events would be delivered",
		{"", t0.Add(time.Minute).Format("2006-01-02T15:04:05")}:                               "1 event would be delivered",
		{t0.Add(-time.Minute).Format(time.RFC3339), t0.Add(time.Minute).Format(time.RFC3339)}: "1 event would be delivered",
	} {
		rec := f.post(t, "/integrations/erp", url.Values{"do": {"count"}, "from": {form[0]}, "to": {form[1]}})
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		assert.Contains(t, text(rec.Body.String()), want, form)
		assert.Contains(t, rec.Body.String(), `name="from" value="`+form[0]+`"`, "the replay button keeps the range")
	}
}

// Options.Refresh sets the page's period; negative turns refreshing off.
func TestOptions_Refresh(t *testing.T) {
	tb := bustest.New(t)
	for refresh, want := range map[time.Duration]string{time.Second: `data-refresh="1000"`, -1: `<body>`} {
		page, err := admin.New(tb.Bus, admin.Options{Caller: access.Anyone(access.Admin()), Refresh: refresh})
		require.NoError(t, err)
		rec := httptest.NewRecorder()
		page.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		assert.Contains(t, rec.Body.String(), want, refresh)
		assert.NotContains(t, rec.Body.String(), `data-refresh="5000"`, refresh)
	}
	_, err := admin.New(nil, admin.Options{Caller: access.Anyone(access.Admin())})
	assert.Error(t, err)
}
