package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/internal/testenv"
)

// browser is a headless Chromium tab on the command's admin page, signed in
// with a token, that records every console error and saves screenshots.
type browser struct {
	t       *testing.T
	ctx     context.Context
	shots   string // where screenshots go
	mu      sync.Mutex
	errors  []string // console errors and uncaught exceptions
	console context.CancelFunc
}

// screenshotDir is where the walk-through's screenshots go:
// $SINKBUS_SCREENSHOTS, else a temporary directory the test logs.
func screenshotDir(t *testing.T) string {
	if d := os.Getenv("SINKBUS_SCREENSHOTS"); d != "" {
		require.NoError(t, os.MkdirAll(d, 0o755))
		return d
	}
	return t.TempDir()
}

// newBrowser starts the Chromium at path.
func newBrowser(t *testing.T, path, password string) *browser {
	t.Helper()
	ctx, cancel := chromedp.NewContext(context.Background(), chromedp.WithAllocatorOptions(
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.WindowSize(1280, 900)))
	t.Cleanup(cancel)
	ctx, timeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(timeout)
	b := &browser{t: t, ctx: ctx, shots: screenshotDir(t)}
	t.Logf("screenshots in %s", b.shots)

	// Basic authentication with the token as password, sent with every
	// request of the tab as a browser that was asked for it does.
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("ops:"+password))
	_, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{
		Headers: network.Headers{"Authorization": auth}})
	require.NoError(t, err)

	cctx, stop := context.WithCancel(ctx)
	b.console = stop
	messages := chromedp.Console(cctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				b.mu.Lock()
				b.errors = append(b.errors, m.String()+" at "+m.URL)
				b.mu.Unlock()
			}
		}
	}()
	return b
}

// do runs actions, failing the test on error.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	require.NoError(b.t, chromedp.Do(b.ctx, actions...), what)
}

// text is the visible text of the first element sel matches, read in
// one step: the page may replace its parts at any time.
func (b *browser) text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.querySelector(`+jsString(sel)+`).innerText`))
	require.NoError(b.t, err, sel)
	return strings.Join(strings.Fields(s), " ")
}

// press clicks the element sel matches, in one step (the page may
// replace its parts at any time), and waits until the JavaScript
// expression until holds on a page that finished loading.
func (b *browser) press(sel, until string) {
	b.t.Helper()
	_, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`document.querySelector(`+jsString(sel)+`).click(), true`))
	require.NoError(b.t, err, sel)
	b.waitFor(`document.readyState === "complete" && (`+until+`)`, 10*time.Second)
}

// waitFor waits until the JavaScript expression holds.
func (b *browser) waitFor(expr string, within time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`(function(){ try { return !!(`+expr+`) } catch (e) { return false } })()`))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("%s never held (last error: %v)", expr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitText waits until the element sel matches shows want, without
// reloading the page: the page refreshes itself.
func (b *browser) waitText(sel, want string, within time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(within)
	for {
		got, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](
			`(document.querySelector(`+jsString(sel)+`)||{}).innerText||""`))
		require.NoError(b.t, err)
		if strings.Contains(strings.Join(strings.Fields(got), " "), want) {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("%s never showed %q; it shows %q", sel, want, got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func jsString(s string) string {
	data, _ := json.Marshal(s)
	return string(data)
}

// shot saves a screenshot of the whole page as name.png.
func (b *browser) shot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	require.NoError(b.t, err)
	require.NoError(b.t, os.WriteFile(filepath.Join(b.shots, name+".png"), png, 0o644))
}

// accessibilityProblems lists what the page in the tab breaks of a few
// WCAG rules a script can check: text contrast (4.5:1, 3:1 for large
// text) against the first opaque background behind it, a label for every
// input, a name for every button and link, a language.
const accessibilityProblems = `(() => {
  const problems = [];
  const rgb = s => (s.match(/[\d.]+/g) || []).map(Number);
  const lum = c => { const v = c.slice(0, 3).map(x => { x /= 255; return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2]; };
  const background = el => { for (; el; el = el.parentElement) { const c = rgb(getComputedStyle(el).backgroundColor);
    if (c.length === 3 || c[3] === 1) return c; } return [255, 255, 255]; };
  for (const el of document.body.querySelectorAll("*")) {
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own || !el.getClientRects().length) continue;
    const st = getComputedStyle(el);
    const [a, b] = [lum(rgb(st.color)), lum(background(el))];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(st.fontSize), bold = Number(st.fontWeight) >= 700;
    const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    if (ratio < need && !el.closest("button:disabled")) problems.push("contrast " + ratio.toFixed(2) + " of " + el.tagName + ": " + el.textContent.trim().slice(0, 40));
  }
  for (const el of document.querySelectorAll("input:not([type=hidden]), select, textarea"))
    if (!el.labels || !el.labels.length) problems.push("no label: " + el.outerHTML.slice(0, 60));
  for (const el of document.querySelectorAll("button, a[href]"))
    if (!(el.getAttribute("aria-label") || el.textContent).trim()) problems.push("no name: " + el.outerHTML.slice(0, 60));
  if (!document.documentElement.lang) problems.push("no lang");
  return problems;
})()`

// accessible checks the page in the tab against accessibilityProblems.
func (b *browser) accessible(page string) {
	b.t.Helper()
	problems, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](accessibilityProblems))
	require.NoError(b.t, err)
	assert.Empty(b.t, problems, "%s: accessibility", page)
}

// consoleErrors are the console errors so far.
func (b *browser) consoleErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.errors...)
}

// flaky is a webhook receiver that refuses events with 422 (the sink
// rejects them at once) while failing is set, and counts what it took.
type flaky struct {
	*httptest.Server
	failing  atomic.Bool
	got      atomic.Int32
	replayed atomic.Int32
	// replayDelay holds replayed deliveries back (nanoseconds), so that a
	// replay outlasts a refresh of the page.
	replayDelay atomic.Int64
}

func newFlaky(t *testing.T) *flaky {
	f := &flaky{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.failing.Load() {
			http.Error(w, "order schema v2 expected", http.StatusUnprocessableEntity)
			return
		}
		f.got.Add(1)
		if r.Header.Get("X-Sinkbus-Replayed") == "true" {
			time.Sleep(time.Duration(f.replayDelay.Load()))
			f.replayed.Add(1)
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(f.Close)
	return f
}

// The admin page in a real browser, against the command: integrations
// created through the API are listed; one is opened, stopped and started;
// an event its receiver refuses appears under rejected events by itself;
// once the receiver recovers, a retry delivers it and it leaves the list;
// a dry run counts what a replay would deliver, the replay runs and the
// page shows it complete; a delete asks first. The page reads without
// JavaScript, fits a phone's width, and writes no error to the console.
func TestAdminPage_in_a_browser(t *testing.T) {
	chromium := testenv.Chromium(t)
	srv := start(t, readmeArgs...)
	erp := newFlaky(t)
	status, body := srv.call("POST", "/api/integrations", `{"id":"erp-sync","name":"ERP order sync",
		"integration_type":"webhook","observes":["order.*"],
		"configuration":{"url":"`+erp.URL+`/hooks/orders?token=erp-live-token-4711","secret_key":"whsec_c2VjcmV0LXNpbmtidXMtYWRtaW4tdGVzdA==","allow_private_networks":true}}`, adminAuth...)
	require.Equal(t, http.StatusCreated, status, body)
	status, body = srv.createShipping(adminAuth...)
	require.Equal(t, http.StatusCreated, status, body)
	status, body = srv.call("POST", "/api/integrations", `{"id":"crm","name":"Acme CRM","integration_type":"webhook",
		"observes":["customer.*"],"configuration":{"url":"https://crm.acme.example/hook"}}`, "Authorization", "Bearer acme-token")
	require.Equal(t, http.StatusCreated, status, body)

	b := newBrowser(t, chromium, "admin-token")
	admin := srv.base + "/admin/"

	// The list.
	b.do("open the list", chromedp.Navigate(admin), chromedp.WaitVisible(chromedp.CSS("table.list")))
	list := b.text("table.list")
	for _, want := range []string{"ERP order sync", "erp-sync", "Order shipping notification", "Acme CRM", "acme/crm", "order.*", "running"} {
		assert.Contains(t, list, want)
	}
	b.shot("1-list")
	b.accessible("the list")

	// One integration: its configuration masked.
	b.press(`a[href="integrations/erp-sync"]`, `document.querySelector("#summary")`)
	assert.Equal(t, "ERP order sync", b.text("h1"))
	cfg := b.text("pre.config")
	assert.Contains(t, cfg, "/hooks/orders")
	assert.NotContains(t, cfg, "erp-live-token")
	assert.NotContains(t, cfg, "c2VjcmV0LXNpbmtidXMtYWRtaW4tdGVzdA")
	b.shot("2-integration")

	// Stop and start.
	b.press(`button[value="stop"]`, `location.search.includes("done=stopped")`)
	assert.Contains(t, b.text(".notice"), "The integration was stopped")
	assert.Contains(t, b.text("#summary"), "Status stopped")
	b.shot("3-stopped")
	b.press(`button[value="start"]`, `location.search.includes("done=started")`)
	assert.Contains(t, b.text(".notice"), "The integration was started")
	assert.Contains(t, b.text("#summary"), "Status running")

	// An event the receiver refuses appears under rejected events while
	// the page is open: it refreshes itself.
	erp.failing.Store(true)
	_, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`window.notReloaded = true`))
	require.NoError(t, err)
	status, body = srv.call("POST", "/orders", `{"customer":"ada@example.com","items":[{"sku":"LAMP-1","quantity":1,"price":49.5}]}`)
	require.Equal(t, http.StatusCreated, status, body)
	b.waitText("#rejected", "Rejected events (1)", 20*time.Second)
	rejected := b.text("#rejected table")
	assert.Contains(t, rejected, "order.created")
	assert.Contains(t, rejected, "422")
	b.waitText("#log", "event_rejected", 10*time.Second)
	kept, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`window.notReloaded === true`))
	require.NoError(t, err)
	assert.True(t, kept, "the page changed in place, without reloading")
	b.shot("4-rejected")
	b.accessible("an integration with a rejected event")

	// The receiver recovers; a retry delivers the event, which leaves the
	// list.
	erp.failing.Store(false)
	b.press(`#rejected button[value="retry"]`, `location.search.includes("done=retried")`)
	assert.Contains(t, b.text(".notice"), "delivered and left the list")
	assert.Contains(t, b.text("#rejected"), "Rejected events (0)")
	assert.EqualValues(t, 1, erp.got.Load())
	b.shot("5-retried")
	erp.replayed.Store(0) // a manual retry is marked replayed too

	// A dry run counts what a replay would deliver, as the API counts it.
	status, body = srv.call("POST", "/api/integrations/erp-sync/replay", `{"dry_run":true}`, adminAuth...)
	require.Equal(t, http.StatusOK, status, body)
	var dry struct{ Matched int }
	require.NoError(t, json.Unmarshal([]byte(body), &dry))
	require.Equal(t, 1, dry.Matched)
	b.press(`button[value="count"]`, `document.querySelector("#replay-count")`)
	assert.Contains(t, b.text("#replay-count"), "1 event would be delivered")
	b.shot("6-dry-run")
	b.accessible("a dry run's count")

	// The replay, and its progress: the row stays highlighted through the
	// page's refreshes while the replay runs.
	erp.replayDelay.Store(int64(6 * time.Second)) // past a refresh (admin.DefaultRefresh, 5 s)
	b.press(`#replay-count button[value="replay"]`, `document.querySelector("#replays tr.highlight")`)
	assert.Contains(t, b.text(".notice"), "The replay started")
	b.waitText("#replays tr.highlight", "completed", 20*time.Second)
	assert.EqualValues(t, 1, erp.replayed.Load())
	erp.replayDelay.Store(0)
	b.shot("7-replayed")

	// Delete asks first: dismissed, the event stays; accepted, it goes.
	var accept atomic.Bool
	asked := make(chan string, 2)
	dialogs := chromedp.Events(b.ctx, page.JavascriptDialogOpening)
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			asked <- ev.Message
			_, _ = chromedp.Call(b.ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: accept.Load()})
		}
	}()
	erp.failing.Store(true)
	b.do("focus", chromedp.Focus(chromedp.CSS(`button[value="stop"]`)))
	status, body = srv.call("POST", "/orders", `{"customer":"bob@example.com","items":[{"sku":"DESK-2","quantity":1,"price":120}]}`)
	require.Equal(t, http.StatusCreated, status, body)
	b.waitText("#rejected", "Rejected events (1)", 20*time.Second)
	focused, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.activeElement.value || ""`))
	require.NoError(t, err)
	assert.Equal(t, "stop", focused, "a refresh keeps the keyboard focus where it was")
	b.press(`#rejected button[value="delete"]`, `true`)
	assert.Contains(t, <-asked, "Delete rejected event")
	assert.Contains(t, b.text("#rejected"), "Rejected events (1)", "dismissed: nothing deleted")
	accept.Store(true)
	b.press(`#rejected button[value="delete"]`, `location.search.includes("done=deleted")`)
	<-asked
	assert.Contains(t, b.text("#rejected"), "Rejected events (0)")

	// The keyboard's first stop is the link past the header.
	b.do("tab", chromedp.Navigate(srv.base+"/admin/integrations/erp-sync"), chromedp.WaitVisible(chromedp.CSS("#summary")),
		chromedp.KeyEvent("\t"))
	focused, err = chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.activeElement.textContent`))
	require.NoError(t, err)
	assert.Equal(t, "Skip to content", focused)

	// A phone: nothing wider than the screen but the tables' own scroll.
	b.do("phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#summary")))
	overflow, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`))
	require.NoError(t, err)
	assert.False(t, overflow, "the page is wider than a phone")
	b.shot("8-phone")
	b.do("laptop", chromedp.EmulateViewport(1280, 900))

	// Without JavaScript everything reads.
	_, err = chromedp.Call(b.ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
	require.NoError(t, err)
	b.do("no script", chromedp.Navigate(admin), chromedp.WaitVisible(chromedp.CSS("table.list")))
	assert.Contains(t, b.text("table.list"), "ERP order sync")
	b.do("no script: one", chromedp.Click(chromedp.CSS(`a[href="integrations/erp-sync"]`)), chromedp.WaitVisible(chromedp.CSS("#log")))
	assert.Contains(t, b.text("#replays"), "completed")
	b.shot("9-without-javascript")

	b.console()
	assert.Empty(t, b.consoleErrors(), "the console has errors")
}

// The admin page takes /api's tokens as the password of basic
// authentication, asking a browser for one; a tenant's sees its own
// integrations only. Without tokens it is as open as /api.
func TestServer_admin_page_takes_the_api_tokens(t *testing.T) {
	srv := start(t, readmeArgs...)
	status, body := srv.createShipping(adminAuth...)
	require.Equal(t, http.StatusCreated, status, body)

	get := func(user, password string) (*http.Response, string) {
		req, err := http.NewRequest(http.MethodGet, srv.base+"/admin/", nil)
		require.NoError(t, err)
		if password != "" {
			req.SetBasicAuth(user, password)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp, string(data)
	}
	resp, body := get("", "")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Contains(t, resp.Header.Get("WWW-Authenticate"), "Basic")
	assert.NotContains(t, body, "Order shipping notification")
	resp, _ = get("ops", "wrong")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	resp, body = get("ops", "admin-token")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, body, "Order shipping notification")
	resp, body = get("acme", "acme-token")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.NotContains(t, body, "Order shipping notification", "the administrator's integration is not acme's")

	open := start(t)
	resp, err := http.Get(open.base + "/admin/")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

// The README shows the page with a screenshot the browser test made.
func TestREADME_shows_the_admin_page(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	assert.Contains(t, string(readme), "](docs/admin.png)")
	png, err := os.ReadFile("../../docs/admin.png")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(png), "\x89PNG\r\n\x1a\n"), "docs/admin.png is a PNG")
}
