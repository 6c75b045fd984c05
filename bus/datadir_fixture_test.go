package bus_test

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/internal/clock"
	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/sinks/file"
	"github.com/sinkbus/sinkbus/sinks/webhook"
)

// The fixture is a DataDir written by the bus as it was before integrations
// could belong to tenants, with what that bus read back from it
// (expected.json). go test ./bus -run TestWriteDataDirFixture
// -write-datadir-fixture writes it again with the bus of the day.
var writeDataDirFixture = flag.Bool("write-datadir-fixture", false,
	"write bus/testdata/datadir-v1 with the current bus (only to refresh the fixture)")

const dataDirFixture = "testdata/datadir-v1"

// fixtureTime is the fake clock's time while the fixture was written.
var fixtureTime = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

// dataDirExpected is what the bus that wrote the fixture read back from it.
type dataDirExpected struct {
	Integrations []json.RawMessage                     `json:"integrations"`
	Logs         map[string][]middleware.LogEntry      `json:"logs"`
	Rejected     map[string][]middleware.RejectedEvent `json:"rejected"`
	Cursors      map[string]uint64                     `json:"cursors"`
	Head         uint64                                `json:"head"`
	// Missed are the events warehouse, stopped, has not received.
	Missed []string `json:"missed"`
}

// fixtureReceiver answers 400 to the events whose id starts with "bad-",
// 204 to others, and records the ids it took.
type fixtureReceiver struct {
	*httptest.Server
	mu  sync.Mutex
	got map[string]int
}

func newFixtureReceiver(t *testing.T) *fixtureReceiver {
	r := &fixtureReceiver{got: map[string]int{}}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var env struct{ ID string }
		_ = json.Unmarshal(body, &env)
		if strings.HasPrefix(env.ID, "bad-") {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.got[env.ID]++
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *fixtureReceiver) ids() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.got))
	for id := range r.got {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

func TestWriteDataDirFixture(t *testing.T) {
	if !*writeDataDirFixture {
		t.Skip("writes the fixture only with -write-datadir-fixture")
	}
	require.NoError(t, os.RemoveAll(dataDirFixture))
	dir := filepath.Join(dataDirFixture, "datadir")
	rcv := newFixtureReceiver(t)
	clk := clock.NewFake(fixtureTime)
	b, err := bus.New(bus.Config{DataDir: dir, Clock: clk, AllowPrivateNetworks: true, Retention: -1})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = b.Run(ctx); close(done) }()
	<-b.Running()

	m := b.Integrations()
	hook := func(url string) webhook.Config {
		return webhook.Config{URL: url, SecretKey: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", AllowPrivateNetworks: true}
	}
	_, err = m.Create(ctx, bus.Integration{ID: "erp-sync", Name: "ERP sync", Observes: []string{"order.*"}, Sink: hook(rcv.URL)})
	require.NoError(t, err)
	_, err = m.Create(ctx, bus.Integration{ID: "warehouse", Observes: []string{"order.fulfilled"},
		Sink: hook(rcv.URL + "/warehouse"), OrderKey: "payload.order_id"})
	require.NoError(t, err)
	_, err = m.Create(ctx, bus.Integration{ID: "archive", Observes: []string{"**"}, Sink: file.Config{}})
	require.NoError(t, err)

	publish := func(ids ...string) {
		for _, id := range ids {
			name := "order.created"
			if strings.HasSuffix(id, "f") {
				name = "order.fulfilled"
			}
			require.NoError(t, b.Publish(ctx, bus.Event{ID: id, Name: name, Tenant: "acme",
				Payload: json.RawMessage(`{"order_id":"` + id + `"}`)}))
		}
	}
	lag := func(id string) uint64 {
		n, err := m.Lag(ctx, id)
		require.NoError(t, err)
		return n
	}
	publish("e-01", "e-02f", "bad-03", "e-04f", "bad-05f")
	require.Eventually(t, func() bool {
		return lag("erp-sync")+lag("warehouse")+lag("archive") == 0
	}, 10*time.Second, time.Millisecond)
	clk.Advance(time.Minute)
	_, err = m.Stop(ctx, "warehouse")
	require.NoError(t, err)
	publish("e-06", "e-07f", "bad-08f")
	require.Eventually(t, func() bool { return lag("erp-sync")+lag("archive") == 0 }, 10*time.Second, time.Millisecond)

	want := dataDirExpected{Logs: map[string][]middleware.LogEntry{},
		Rejected: map[string][]middleware.RejectedEvent{}, Cursors: map[string]uint64{}, Head: b.Events().Head(),
		Missed: []string{"e-07f", "bad-08f"}}
	list, err := m.List(ctx)
	require.NoError(t, err)
	for _, in := range list {
		data, err := json.Marshal(in)
		require.NoError(t, err)
		want.Integrations = append(want.Integrations, data)
		want.Logs[in.ID], err = m.Log(ctx, in.ID)
		require.NoError(t, err)
		want.Rejected[in.ID], err = m.Rejected(ctx, in.ID)
		require.NoError(t, err)
		want.Cursors[in.ID], _ = b.Events().Cursor(in.ID)
	}
	cancel()
	<-done
	require.NoError(t, b.Close())
	data, err := json.MarshalIndent(want, "", "  ")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dataDirFixture, "expected.json"), data, 0o644))
	t.Logf("received: %v", rcv.ids())
}

// TestDataDir_written_before_tenants_keeps_everything opens a copy of the
// fixture: every integration, cursor, log entry and rejected event is read
// back as the bus that wrote it read them, and each goes on from there.
func TestDataDir_written_before_tenants_keeps_everything(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(dataDirFixture, "expected.json"))
	require.NoError(t, err)
	var want dataDirExpected
	require.NoError(t, json.Unmarshal(data, &want))
	dir := t.TempDir()
	require.NoError(t, os.CopyFS(dir, os.DirFS(filepath.Join(dataDirFixture, "datadir"))))

	clk := clock.NewFake(fixtureTime.Add(time.Hour))
	b := startBus(t, bus.Config{DataDir: dir, Clock: clk, AllowPrivateNetworks: true, Retention: -1})
	m := b.Integrations()
	list, err := m.List(ctx)
	require.NoError(t, err)
	require.Len(t, list, len(want.Integrations))
	for i, in := range list {
		in.Effective = bus.Effective{} // what reads add, not what was written
		got, err := json.Marshal(in)
		require.NoError(t, err)
		require.JSONEq(t, string(want.Integrations[i]), string(got))
		logs, err := m.Log(ctx, in.ID)
		require.NoError(t, err)
		sameJSON(t, want.Logs[in.ID], logs)
		rejected, err := m.Rejected(ctx, in.ID)
		require.NoError(t, err)
		sameJSON(t, want.Rejected[in.ID], rejected)
		cursor, ok := b.Events().Cursor(in.ID)
		require.True(t, ok, in.ID)
		require.Equal(t, want.Cursors[in.ID], cursor, in.ID)
	}
	require.Equal(t, want.Head, b.Events().Head())

	// warehouse, stopped, catches up from its cursor: what it missed, and
	// nothing it had.
	rcv := newFixtureReceiver(t)
	pointAt(t, m, "warehouse", rcv.URL)
	_, err = m.Start(ctx, "warehouse")
	require.NoError(t, err)
	// Its deliveries run concurrently (other orders): the rejections may
	// land before the delivery does.
	require.Eventually(t, func() bool {
		r, err := m.Rejected(ctx, "warehouse")
		return err == nil && len(r) == 2 && len(rcv.ids()) > 0
	}, 10*time.Second, time.Millisecond)
	require.Equal(t, []string{"e-07f"}, rcv.ids())
	rejected, err := m.Rejected(ctx, "warehouse")
	require.NoError(t, err)
	require.Equal(t, []string{"bad-08f", "bad-05f"}, []string{rejected[0].EventID, rejected[1].EventID})

	// erp-sync's rejected events can be retried, to a receiver that takes them.
	all := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	t.Cleanup(all.Close)
	pointAt(t, m, "erp-sync", all.URL)
	require.NoError(t, m.RetryRejected(ctx, "erp-sync", "bad-03"))
	rejected, err = m.Rejected(ctx, "erp-sync")
	require.NoError(t, err)
	require.Len(t, rejected, 2)

	// archive's sink still writes where it wrote.
	require.NoError(t, b.Publish(ctx, bus.Event{ID: "e-09", Name: "order.created", Tenant: "acme"}))
	require.Eventually(t, func() bool {
		lag, err := m.Lag(ctx, "archive")
		return err == nil && lag == 0
	}, 10*time.Second, time.Millisecond)
	_, err = m.Stop(ctx, "archive")
	require.NoError(t, err)
	exports, err := filepath.Glob(filepath.Join(dir, "exports", "archive", "acme", "*.export"))
	require.NoError(t, err)
	require.Len(t, exports, 2, "the fixture's export and the new one")

	// A tenant's erp-sync beside the application's leaves it alone.
	before, err := m.Log(ctx, "erp-sync")
	require.NoError(t, err)
	_, err = m.Tenant("acme").Create(ctx, bus.Integration{ID: "erp-sync", Sink: webhook.Config{URL: all.URL, AllowPrivateNetworks: true}})
	require.NoError(t, err)
	after, err := m.Log(ctx, "erp-sync")
	require.NoError(t, err)
	require.Equal(t, before, after)
	rejected, err = m.Rejected(ctx, "erp-sync")
	require.NoError(t, err)
	require.Len(t, rejected, 2)
	kept, err := filepath.Glob(filepath.Join(dir, "log", "acme_2Ferp-sync.log*"))
	require.NoError(t, err)
	assert.Len(t, kept, 1, "the tenant's log is kept under its ref")
}

// sameJSON fails the test unless want and got have the same JSON form.
func sameJSON(t *testing.T, want, got any) {
	t.Helper()
	w, err := json.Marshal(want)
	require.NoError(t, err)
	g, err := json.Marshal(got)
	require.NoError(t, err)
	require.JSONEq(t, string(w), string(g))
}

// pointAt points the webhook integration id at url.
func pointAt(t *testing.T, m *bus.Integrations, id, url string) {
	t.Helper()
	_, err := m.UpdateFunc(ctx, id, func(in *bus.Integration) error {
		cfg := in.Sink.(webhook.Config)
		cfg.URL = url
		in.Sink = cfg
		return nil
	})
	require.NoError(t, err)
}
