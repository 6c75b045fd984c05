package bus_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/sinks/webhook"
)

// okReceiver is a webhook receiver on loopback answering 204.
func okReceiver(t testing.TB) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// declared is what an application declares: two webhooks to url.
func declared(url string) []bus.Integration {
	return []bus.Integration{
		{ID: "erp", Name: "ERP", Observes: []string{"order.*"},
			Sink: webhook.Config{URL: url + "/erp", SecretKey: "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ=", AllowPrivateNetworks: true}},
		{ID: "crm", Observes: []string{"customer.*"}, Status: bus.Stopped,
			Sink: webhook.Config{URL: url + "/crm", AllowPrivateNetworks: true}},
	}
}

func TestReconcile_creates_then_changes_nothing_on_the_next_start(t *testing.T) {
	url := okReceiver(t)
	b := startBus(t, bus.Config{DataDir: t.TempDir(), AllowPrivateNetworks: true})
	m := b.Integrations()

	res, err := m.Reconcile(ctx, "shop", declared(url))
	require.NoError(t, err)
	assert.Equal(t, bus.Reconciled{Created: []string{"crm", "erp"}}, res)
	assert.True(t, res.Changed())
	erp, err := m.Get(ctx, "erp")
	require.NoError(t, err)
	assert.Equal(t, "shop", erp.Owner)
	assert.Equal(t, bus.Running, erp.Status)
	crm, err := m.Get(ctx, "crm")
	require.NoError(t, err)
	assert.Equal(t, bus.Stopped, crm.Status, "created as declared")
	logBefore, err := m.Log(ctx, "erp")
	require.NoError(t, err)
	require.NotEmpty(t, logBefore)
	assert.Equal(t, `Created by Reconcile (owner "shop").`, logBefore[len(logBefore)-1].Reason)

	res, err = m.Reconcile(ctx, "shop", declared(url))
	require.NoError(t, err)
	assert.Equal(t, bus.Reconciled{Unchanged: []string{"crm", "erp"}}, res)
	assert.False(t, res.Changed())
	assert.Equal(t, "created 0, updated 0, adopted 0, removed 0, unchanged 2", res.String())
	again, err := m.Get(ctx, "erp")
	require.NoError(t, err)
	assert.Equal(t, erp.UpdatedAt, again.UpdatedAt)
	logAfter, err := m.Log(ctx, "erp")
	require.NoError(t, err)
	assert.Equal(t, logBefore, logAfter, "no restart, no update: the log has nothing new")

	// Defaults spelled out are the same settings.
	same := declared(url)
	same[0].Concurrency = 8
	same[0].Delivery.Retry.InitialInterval = middleware.DefaultInitialInterval
	res, err = m.Reconcile(ctx, "shop", same)
	require.NoError(t, err)
	assert.Equal(t, []string{"crm", "erp"}, res.Unchanged)
}

func TestReconcile_updates_what_changed_keeping_status_and_rejected_events(t *testing.T) {
	url := okReceiver(t)
	b := startBus(t, bus.Config{DataDir: t.TempDir(), AllowPrivateNetworks: true})
	m := b.Integrations()
	_, err := m.Reconcile(ctx, "shop", declared(url))
	require.NoError(t, err)
	_, err = m.Stop(ctx, "erp") // an operator stops it
	require.NoError(t, err)

	changed := declared(url)
	changed[0].Name = "ERP v2"
	changed[0].Observes = []string{"order.**"}
	res, err := m.Reconcile(ctx, "shop", changed)
	require.NoError(t, err)
	assert.Equal(t, bus.Reconciled{Updated: []string{"erp"}, Unchanged: []string{"crm"}}, res)
	erp, err := m.Get(ctx, "erp")
	require.NoError(t, err)
	assert.Equal(t, "ERP v2", erp.Name)
	assert.Equal(t, []string{"order.**"}, erp.Observes)
	assert.Equal(t, bus.Stopped, erp.Status, "the status is the operator's")
	assert.Equal(t, "shop", erp.Owner)
	logs, err := m.Log(ctx, "erp")
	require.NoError(t, err)
	assert.Equal(t, "integration_updated", logs[0].Action)
	assert.Equal(t, `Updated by Reconcile (owner "shop").`, logs[0].Reason)
}

// A temporary integration cannot be updated: declared as it is, it is
// unchanged; declared otherwise, Reconcile says it cannot change.
func TestReconcile_leaves_a_temporary_integration_declared_as_it_is(t *testing.T) {
	url := okReceiver(t)
	b := startBus(t, bus.Config{AllowPrivateNetworks: true})
	m := b.Integrations()
	now := time.Now().UTC().Truncate(time.Second)
	backfill := []bus.Integration{{ID: "backfill", Kind: bus.Temporary, StartsAt: now.Add(-time.Hour), EndsAt: now.Add(-time.Minute),
		Sink: webhook.Config{URL: url, AllowPrivateNetworks: true}}}
	res, err := m.Reconcile(ctx, "shop", backfill)
	require.NoError(t, err)
	assert.Equal(t, []string{"backfill"}, res.Created)
	backfill[0].StartsAt = backfill[0].StartsAt.In(time.FixedZone("CET", 3600)) // the same instant
	res, err = m.Reconcile(ctx, "shop", backfill)
	require.NoError(t, err)
	assert.Equal(t, []string{"backfill"}, res.Unchanged)

	backfill[0].Observes = []string{"order.*"}
	_, err = m.Reconcile(ctx, "shop", backfill)
	require.ErrorIs(t, err, bus.ErrImmutable)
}

func TestReconcile_removes_only_what_its_owner_no_longer_declares(t *testing.T) {
	url := okReceiver(t)
	b := startBus(t, bus.Config{AllowPrivateNetworks: true})
	m := b.Integrations()
	hook := func(path string) webhook.Config {
		return webhook.Config{URL: url + path, AllowPrivateNetworks: true}
	}
	_, err := m.Create(ctx, bus.Integration{ID: "from-api", Sink: hook("/api"), Owner: "shop"}) // Create sets no owner
	require.NoError(t, err)
	_, err = m.Reconcile(ctx, "billing", []bus.Integration{{ID: "invoices", Sink: hook("/inv")}})
	require.NoError(t, err)
	_, err = m.Reconcile(ctx, "shop", declared(url))
	require.NoError(t, err)
	_, err = m.Tenant("acme").Reconcile(ctx, "shop", []bus.Integration{{ID: "acme-erp", Sink: hook("/acme")}})
	require.NoError(t, err)

	// The next release no longer declares crm.
	res, err := m.Reconcile(ctx, "shop", declared(url)[:1])
	require.NoError(t, err)
	assert.Equal(t, bus.Reconciled{Removed: []string{"acme/acme-erp", "crm"}, Unchanged: []string{"erp"}}, res,
		"every integration of the owner in the view: the application's view holds the tenant's")
	list, err := m.List(ctx)
	require.NoError(t, err)
	var left []string
	for _, in := range list {
		left = append(left, in.Ref()+"="+in.Owner)
	}
	assert.Equal(t, []string{"erp=shop", "from-api=", "invoices=billing"}, left)

	// A tenant's view removes only that tenant's.
	_, err = m.Tenant("acme").Reconcile(ctx, "shop", []bus.Integration{{ID: "acme-erp", Sink: hook("/acme")}})
	require.NoError(t, err)
	res, err = m.Tenant("acme").Reconcile(ctx, "shop", nil)
	require.NoError(t, err)
	assert.Equal(t, bus.Reconciled{Removed: []string{"acme-erp"}}, res)
	_, err = m.Get(ctx, "erp")
	require.NoError(t, err)
}

func TestReconcile_adopts_an_ownerless_integration_and_leaves_another_owners(t *testing.T) {
	url := okReceiver(t)
	b := startBus(t, bus.Config{AllowPrivateNetworks: true})
	m := b.Integrations()
	// What a get-or-create at start-up made before.
	_, err := m.Create(ctx, declared(url)[0])
	require.NoError(t, err)
	_, err = m.Reconcile(ctx, "billing", []bus.Integration{declared(url)[1]})
	require.NoError(t, err)

	res, err := m.Reconcile(ctx, "shop", declared(url))
	require.ErrorIs(t, err, bus.ErrOwned)
	assert.Contains(t, err.Error(), `"crm"`)
	assert.Contains(t, err.Error(), `"billing"`)
	assert.Equal(t, bus.Reconciled{Adopted: []string{"erp"}}, res, "what could be done is done")
	erp, err := m.Get(ctx, "erp")
	require.NoError(t, err)
	assert.Equal(t, "shop", erp.Owner)
	crm, err := m.Get(ctx, "crm")
	require.NoError(t, err)
	assert.Equal(t, "billing", crm.Owner)

	// Update through the API keeps the owner, whatever it sends.
	_, err = m.UpdateFunc(ctx, "erp", func(in *bus.Integration) error {
		in.Name, in.Owner = "renamed", "billing"
		return nil
	})
	require.NoError(t, err)
	erp, err = m.Get(ctx, "erp")
	require.NoError(t, err)
	assert.Equal(t, "shop", erp.Owner)
}

func TestReconcile_refuses_a_bad_declaration_whole_naming_each_field(t *testing.T) {
	url := okReceiver(t)
	b := startBus(t, bus.Config{AllowPrivateNetworks: true})
	m := b.Integrations()
	bad := declared(url)
	bad = append(bad,
		bus.Integration{Sink: webhook.Config{URL: url, AllowPrivateNetworks: true}},                              // no id
		bus.Integration{ID: "erp", Sink: webhook.Config{URL: url, AllowPrivateNetworks: true}},                   // twice
		bus.Integration{ID: "bad", Observes: []string{"a..b"}, Sink: webhook.Config{AllowPrivateNetworks: true}}, // invalid
		bus.Integration{ID: "fn", Sink: bus.HandlerFunc(func(context.Context, bus.Event) error { return nil })},
	)
	_, err := m.Reconcile(ctx, "shop", bad)
	require.ErrorIs(t, err, bus.ErrInvalid)
	assert.Equal(t, []string{"[2].id", "[3].id", "[4].observes[0]", "[4].configuration.url", "[5].configuration"}, fieldsOf(err))
	_, err = m.Reconcile(ctx, "not an owner", nil)
	require.ErrorIs(t, err, bus.ErrInvalid)
	assert.Equal(t, []string{"owner"}, fieldsOf(err))
	list, err := m.List(ctx)
	require.NoError(t, err)
	assert.Empty(t, list, "nothing changed")
}

func TestReconcile_concurrent_calls_agree(t *testing.T) {
	url := okReceiver(t)
	b := startBus(t, bus.Config{AllowPrivateNetworks: true})
	m := b.Integrations()
	const n = 8
	results := make([]bus.Reconciled, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			results[i], err = m.Reconcile(ctx, "shop", declared(url))
			assert.NoError(t, err)
		}()
	}
	wg.Wait()
	created := map[string]int{}
	for _, r := range results {
		for _, id := range r.Created {
			created[id]++
		}
		assert.Empty(t, r.Updated)
		assert.Empty(t, r.Removed)
		assert.Len(t, append(r.Created, r.Unchanged...), 2)
	}
	assert.Equal(t, map[string]int{"erp": 1, "crm": 1}, created)
}

// The owner is saved with the integration, and the API JSON shows it.
func TestReconcile_owner_survives_a_restart(t *testing.T) {
	url := okReceiver(t)
	dir := t.TempDir()
	b, err := bus.New(bus.Config{DataDir: dir, AllowPrivateNetworks: true})
	require.NoError(t, err)
	_, err = b.Integrations().Reconcile(ctx, "shop", declared(url))
	require.NoError(t, err)
	require.NoError(t, b.Close())

	b = startBus(t, bus.Config{DataDir: dir, AllowPrivateNetworks: true})
	erp, err := b.Integrations().Get(ctx, "erp")
	require.NoError(t, err)
	assert.Equal(t, "shop", erp.Owner)
	data, err := json.Marshal(erp)
	require.NoError(t, err)
	assert.Contains(t, string(data), `"owner":"shop"`)
	res, err := b.Integrations().Reconcile(ctx, "shop", declared(url))
	require.NoError(t, err)
	assert.Equal(t, []string{"crm", "erp"}, res.Unchanged)
}

// reconcileChildEnv makes TestReconcileChild a process that opens a bus in
// the DataDir it names (waiting for the lock), reconciles declared and
// prints what it did as JSON.
const reconcileChildEnv = "SINKBUS_RECONCILE_CHILD"

// TestReconcileChild is not a test: TestReconcile_two_processes_starting_at_once
// re-executes the test binary to run it.
func TestReconcileChild(t *testing.T) {
	dir := os.Getenv(reconcileChildEnv)
	if dir == "" {
		t.Skip("child process of TestReconcile_two_processes_starting_at_once")
	}
	reconcileAndExit(bus.Config{DataDir: dir, DataDirLockWait: time.Minute, AllowPrivateNetworks: true}, time.Time{})
}

// reconcileAndExit is a child process's work: it opens a bus on cfg,
// reconciles the declaration (at the instant at, unless zero), prints what
// it did as JSON and closes the bus, or exits 2 saying what failed.
func reconcileAndExit(cfg bus.Config, at time.Time) {
	b, err := bus.New(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	time.Sleep(time.Until(at))
	res, err := b.Integrations().Reconcile(context.Background(), "shop", declared("http://127.0.0.1:1"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "reconcile:", err)
		os.Exit(2)
	}
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
	if err := b.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "close:", err)
		os.Exit(2)
	}
}

// reconcileInTwoChildren runs test in two child processes with env, and
// returns what each reconciled, the one that created first.
func reconcileInTwoChildren(t *testing.T, test, env string) []bus.Reconciled {
	t.Helper()
	children := []*crashChild{startChild(t, test, env), startChild(t, test, env)}
	var results []bus.Reconciled
	for _, c := range children {
		var res bus.Reconciled
		require.NoError(t, c.wait(t, func(line string) {
			if json.Unmarshal([]byte(line), &res) == nil {
				results = append(results, res)
			}
		}), "%s", &c.stderr)
	}
	require.Len(t, results, 2)
	if len(results[0].Created) == 0 {
		results[0], results[1] = results[1], results[0]
	}
	return results
}

// Two replicas start at once on one DataDir, as in an overlapping deploy:
// one waits for the other's lock, and the declaration is applied once.
func TestReconcile_two_processes_starting_at_once(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	dir := t.TempDir()
	results := reconcileInTwoChildren(t, "TestReconcileChild", reconcileChildEnv+"="+dir)
	assert.Equal(t, bus.Reconciled{Created: []string{"crm", "erp"}}, results[0])
	assert.Equal(t, bus.Reconciled{Unchanged: []string{"crm", "erp"}}, results[1])

	b := startBus(t, bus.Config{DataDir: dir, AllowPrivateNetworks: true})
	list, err := b.Integrations().List(ctx)
	require.NoError(t, err)
	require.Len(t, list, 2)
	for _, in := range list {
		assert.Equal(t, "shop", in.Owner)
	}
}
