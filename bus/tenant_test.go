package bus_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/bustest"
	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/replay"
	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/file"
)

// tenantSink records what an in-process integration receives, by event id,
// and rejects the events it is told to until it is told otherwise.
type tenantSink struct {
	mu       sync.Mutex
	live     map[string]bus.Event // first deliveries
	replayed map[string]bus.Event // replays and retries
	reject   map[string]bool
}

func newTenantSink() *tenantSink {
	return &tenantSink{live: map[string]bus.Event{}, replayed: map[string]bus.Event{}, reject: map[string]bool{}}
}

func (s *tenantSink) handle(_ context.Context, e bus.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reject[e.ID] {
		return sinks.Permanent(errors.New("refused by the test"))
	}
	if e.Replayed {
		s.replayed[e.ID] = e
	} else {
		s.live[e.ID] = e
	}
	return nil
}

func (s *tenantSink) setReject(id string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reject[id] = on
}

// ids lists the ids of the events received, live or replayed, sorted, and
// fails the test when one is not of tenant (when tenant is not "*").
func (s *tenantSink) ids(t *testing.T, replayed bool, tenant string) []string {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	from := s.live
	if replayed {
		from = s.replayed
	}
	out := make([]string, 0, len(from))
	for id, e := range from {
		if tenant != "*" {
			require.Equal(t, tenant, e.Tenant, "event %s crossed into tenant %q's integration", id, tenant)
		}
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

func (s *tenantSink) count(replayed bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if replayed {
		return len(s.replayed)
	}
	return len(s.live)
}

// eventTenants are the tenants of the mixed events: two tenants and
// spellings close to theirs, none of which is theirs.
var eventTenants = []string{"acme", "globex", "", "Acme", "ACME", "acme ", " acme", "acme/erp-sync",
	"acme.eu", "globex-", "acme%2F", "globex\t"}

// publishMixed publishes n events cycling through eventTenants and returns
// the ids of each tenant's.
func publishMixed(t *testing.T, tb *bustest.Bus, n int) map[string][]string {
	t.Helper()
	byTenant := map[string][]string{}
	batch := make([]bus.Event, 0, 500)
	for i := range n {
		tenant := eventTenants[i%len(eventTenants)]
		id := fmt.Sprintf("ev-%05d", i)
		byTenant[tenant] = append(byTenant[tenant], id)
		batch = append(batch, bus.Event{ID: id, Name: "order.created", Tenant: tenant,
			Payload: json.RawMessage(`{"tenant":"acme","n":` + fmt.Sprint(i) + `}`)})
		if len(batch) == cap(batch) || i == n-1 {
			tb.MustPublish(batch...)
			batch = batch[:0]
		}
	}
	for _, ids := range byTenant {
		sort.Strings(ids)
	}
	return byTenant
}

func without(ids []string, drop ...string) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if !contains(drop, id) {
			out = append(out, id)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Two tenants each have an integration erp-sync observing everything (and
// a filter every event passes), beside the application's own erp-sync.
// Of 10,000 events of mixed tenants each tenant's receives exactly its own:
// live, through a replay (and its dry-run count), through a temporary
// integration, and through the retry of a rejected event.
func TestTenants_10000_mixed_events_reach_each_tenant_only_its_own(t *testing.T) {
	tb := bustest.New(t)
	all := tb.Integrations()
	acme, globex := all.Tenant("acme"), all.Tenant("globex")
	sinkA, sinkG, sinkApp := newTenantSink(), newTenantSink(), newTenantSink()
	everything := func(s *tenantSink) bus.Integration {
		in := bus.Integration{ID: "erp-sync", Observes: []string{"**"}, Sink: bus.HandlerFunc(s.handle)}
		in.Filter.Payload = []byte(`{"tenant":{"$eq":"acme"}}`) // true of every event's payload
		return in
	}
	_, err := acme.Create(ctx, everything(sinkA))
	require.NoError(t, err)
	_, err = globex.Create(ctx, everything(sinkG))
	require.NoError(t, err)
	_, err = all.Create(ctx, everything(sinkApp))
	require.NoError(t, err)
	// One event of each tenant is rejected first.
	const rejectA, rejectG = "ev-00012", "ev-00013" // acme's and globex's (12 tenants in the cycle)
	sinkA.setReject(rejectA, true)
	sinkG.setReject(rejectG, true)

	start := tb.Clock.Now()
	tb.Clock.Advance(time.Second)
	const n = 10000
	byTenant := publishMixed(t, tb, n)
	require.Contains(t, byTenant["acme"], rejectA)
	require.Contains(t, byTenant["globex"], rejectG)
	tb.Clock.Advance(time.Second)
	end := tb.Clock.Now()
	tb.Clock.Advance(time.Second) // the range has ended

	// A guard against a hang, long enough for a loaded machine under -race.
	const patience = time.Minute
	require.Eventually(t, func() bool {
		for _, ref := range []string{"acme/erp-sync", "globex/erp-sync", "erp-sync"} {
			if lag, err := all.Lag(ctx, ref); err != nil || lag > 0 {
				return false
			}
		}
		return sinkApp.count(false) == n
	}, patience, time.Millisecond)
	assert.Equal(t, without(byTenant["acme"], rejectA), sinkA.ids(t, false, "acme"))
	assert.Equal(t, without(byTenant["globex"], rejectG), sinkG.ids(t, false, "globex"))
	assert.Len(t, sinkApp.ids(t, false, "*"), n, "the application's integration receives every tenant's")

	// Rejected events: each tenant's own, retried through its own view.
	rejected, err := acme.Rejected(ctx, "erp-sync")
	require.NoError(t, err)
	require.Len(t, rejected, 1)
	assert.Equal(t, rejectA, rejected[0].EventID)
	require.ErrorIs(t, acme.RetryRejected(ctx, "erp-sync", rejectG), middleware.ErrNotFound)
	sinkA.setReject(rejectA, false)
	require.NoError(t, acme.RetryRejected(ctx, "erp-sync", rejectA))
	assert.Equal(t, []string{rejectA}, sinkA.ids(t, true, "acme"))
	assert.Equal(t, 0, sinkG.count(true))

	// A replay of the whole range: the dry run counts acme's events alone,
	// and the replay delivers them again, and only them.
	dry, err := acme.Replay(ctx, "erp-sync", replay.Request{DryRun: true})
	require.NoError(t, err)
	assert.Equal(t, len(byTenant["acme"]), dry.Matched)
	job, err := acme.Replay(ctx, "erp-sync", replay.Request{})
	require.NoError(t, err)
	wctx, cancel := context.WithTimeout(ctx, patience)
	defer cancel()
	require.NoError(t, job.Wait(wctx))
	assert.Equal(t, len(byTenant["acme"]), job.Matched)
	assert.Equal(t, byTenant["acme"], sinkA.ids(t, true, "acme"))
	assert.Equal(t, 0, sinkG.count(true), "globex's integration got no replay")

	// A temporary integration of globex over the whole range.
	sinkT := newTenantSink()
	_, err = globex.Create(ctx, bus.Integration{ID: "backfill", Kind: bus.Temporary, StartsAt: start, EndsAt: end,
		Observes: []string{"**"}, Sink: bus.HandlerFunc(sinkT.handle)})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		in, err := globex.Get(ctx, "backfill")
		return err == nil && in.Status == bus.Stopped
	}, patience, time.Millisecond, "the temporary integration completes")
	assert.Equal(t, byTenant["globex"], sinkT.ids(t, false, "globex"))
}

// A tenant's view holds that tenant's integrations alone, by plain id; the
// application's holds every one, by ref. No spelling of an id reaches
// another tenant's integration.
func TestIntegrations_Tenant_view_reaches_only_its_tenant(t *testing.T) {
	tb := bustest.New(t)
	all := tb.Integrations()
	acme, globex := all.Tenant("acme"), all.Tenant("globex")
	for _, m := range []*bus.Integrations{acme, globex, all} {
		_, err := m.Create(ctx, bus.Integration{ID: "erp-sync", Sink: bustest.NewSink()})
		require.NoError(t, err)
	}
	_, err := globex.Create(ctx, bus.Integration{ID: "warehouse", Sink: bustest.NewSink()})
	require.NoError(t, err)

	refs := func(m *bus.Integrations) []string {
		list, err := m.List(ctx)
		require.NoError(t, err)
		out := make([]string, len(list))
		for i, in := range list {
			out[i] = in.Ref()
		}
		return out
	}
	assert.Equal(t, []string{"acme/erp-sync"}, refs(acme))
	assert.Equal(t, []string{"globex/erp-sync", "globex/warehouse"}, refs(globex))
	assert.Equal(t, []string{"acme/erp-sync", "erp-sync", "globex/erp-sync", "globex/warehouse"}, refs(all))

	in, err := acme.Get(ctx, "erp-sync")
	require.NoError(t, err)
	assert.Equal(t, "acme", in.Tenant)
	in, err = all.Get(ctx, "globex/warehouse")
	require.NoError(t, err)
	assert.Equal(t, "warehouse", in.ID)
	in, err = all.Get(ctx, "erp-sync")
	require.NoError(t, err)
	assert.Empty(t, in.Tenant, "a plain id is the application's own")

	for _, id := range []string{"warehouse", "globex/warehouse", "globex/erp-sync", "acme/erp-sync",
		"../globex/warehouse", "Warehouse", "WAREHOUSE", "globex%2Fwarehouse", "/warehouse", "warehouse/", ""} {
		_, err := acme.Get(ctx, id)
		assert.ErrorIs(t, err, bus.ErrNotFound, id)
		_, err = acme.Log(ctx, id)
		assert.ErrorIs(t, err, bus.ErrNotFound, id)
		assert.ErrorIs(t, acme.Delete(ctx, id), bus.ErrNotFound, id)
		_, err = acme.Stop(ctx, id)
		assert.ErrorIs(t, err, bus.ErrNotFound, id)
	}
	assert.Equal(t, []string{"globex/erp-sync", "globex/warehouse"}, refs(globex), "nothing of globex's changed")

	// A tenant's view reaches no other tenant, nor does an invalid name.
	_, err = acme.Tenant("globex").List(ctx)
	assert.ErrorIs(t, err, bus.ErrNotFound)
	_, err = acme.Tenant("globex").Get(ctx, "warehouse")
	assert.ErrorIs(t, err, bus.ErrNotFound)
	assert.Equal(t, []string{"acme/erp-sync"}, refs(acme.Tenant("acme")))
	for _, name := range []string{"", "a/b", "-acme", "acme corp", string(make([]byte, 65))} {
		_, err := all.Tenant(name).List(ctx)
		assert.ErrorIs(t, err, bus.ErrInvalid, "%q", name)
		_, err = all.Tenant(name).Create(ctx, bus.Integration{Sink: bustest.NewSink()})
		assert.ErrorIs(t, err, bus.ErrInvalid, "%q", name)
	}

	// Create: the view's tenant; another is refused, naming the field.
	_, err = acme.Create(ctx, bus.Integration{ID: "other", Tenant: "globex", Sink: bustest.NewSink()})
	require.ErrorIs(t, err, bus.ErrInvalid)
	assert.Equal(t, []string{"tenant"}, fieldsOf(err))
	require.ErrorIs(t, acme.Validate(bus.Integration{Tenant: "globex", Sink: bustest.NewSink()}), bus.ErrInvalid)
	in, err = acme.Create(ctx, bus.Integration{ID: "own", Tenant: "acme", Sink: bustest.NewSink()})
	require.NoError(t, err)
	assert.Equal(t, "acme/own", in.Ref())
	_, err = all.Create(ctx, bus.Integration{ID: "bad", Tenant: "a/b", Sink: bustest.NewSink()})
	require.ErrorIs(t, err, bus.ErrInvalid)
	assert.Equal(t, []string{"tenant"}, fieldsOf(err))

	// The tenant cannot change.
	_, err = acme.UpdateFunc(ctx, "erp-sync", func(in *bus.Integration) error {
		in.Tenant = "globex"
		return nil
	})
	require.ErrorIs(t, err, bus.ErrImmutable)
	assert.Equal(t, []string{"tenant"}, fieldsOf(err))
	in, err = all.UpdateFunc(ctx, "acme/erp-sync", func(in *bus.Integration) error {
		in.Name = "renamed by the application"
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, "acme", in.Tenant)

	// Deleting acme's erp-sync leaves the others' alone.
	require.NoError(t, acme.Delete(ctx, "erp-sync"))
	assert.Equal(t, []string{"acme/own", "erp-sync", "globex/erp-sync", "globex/warehouse"}, refs(all))
}

// MaxIntegrations counts per tenant, the application's own integrations as
// a group of their own; MaxTotalIntegrations counts them all.
func TestIntegrations_limits_count_per_tenant_under_a_bus_ceiling(t *testing.T) {
	tb := bustest.New(t, func(c *bus.Config) { c.MaxIntegrations, c.MaxTotalIntegrations = 2, 5 })
	all := tb.Integrations()
	create := func(m *bus.Integrations) error {
		_, err := m.Create(ctx, bus.Integration{Sink: bustest.NewSink()})
		return err
	}
	for _, m := range []*bus.Integrations{all.Tenant("acme"), all.Tenant("globex")} {
		require.NoError(t, create(m))
		require.NoError(t, create(m))
		err := create(m)
		require.ErrorIs(t, err, bus.ErrLimit)
		assert.Contains(t, err.Error(), "at most 2 per tenant")
	}
	require.NoError(t, create(all))
	err := create(all)
	require.ErrorIs(t, err, bus.ErrLimit)
	assert.Contains(t, err.Error(), "at most 5 on this bus")
	require.ErrorIs(t, create(all.Tenant("initech")), bus.ErrLimit)

	_, err = bus.New(bus.Config{MaxTotalIntegrations: -1})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "MaxTotalIntegrations")
}

// A tenant's view counts the lag of its integration in its tenant's events;
// the application's counts every journal event.
func TestIntegrations_Lag_in_a_tenants_view_counts_its_events_only(t *testing.T) {
	tb := bustest.New(t)
	acme := tb.Integrations().Tenant("acme")
	_, err := acme.Create(ctx, bus.Integration{ID: "erp-sync", Status: bus.Stopped, Sink: bustest.NewSink()})
	require.NoError(t, err)
	for i, tenant := range []string{"acme", "globex", "globex", "acme", "", "globex", "acme", "Acme"} {
		tb.MustPublish(bus.Event{ID: fmt.Sprintf("e-%d", i), Name: "order.created", Tenant: tenant})
	}
	lag, err := acme.Lag(ctx, "erp-sync")
	require.NoError(t, err)
	assert.EqualValues(t, 3, lag)
	lag, err = tb.Integrations().Lag(ctx, "acme/erp-sync")
	require.NoError(t, err)
	assert.EqualValues(t, 8, lag)
}

// What the in-memory journal removed before a tenant's integration read it
// is not counted to the tenant (whose events they were went with them):
// not in its log. The application's Observer gets the count.
func TestTenants_losses_are_not_counted_in_a_tenants_log(t *testing.T) {
	var lost sync.Map
	tb := bustest.New(t, func(c *bus.Config) {
		c.MemoryBytes = 32 << 10
		c.Observer = lossObserver{lost: &lost}
	})
	acme := tb.Integrations().Tenant("acme")
	_, err := acme.Create(ctx, bus.Integration{ID: "erp-sync", Status: bus.Stopped, Sink: bustest.NewSink()})
	require.NoError(t, err)
	for i := range 300 {
		tb.MustPublish(bus.Event{Name: "order.created", Tenant: []string{"acme", "globex", "globex"}[i%3],
			Payload: json.RawMessage(`{"pad":"` + strings.Repeat("x", 200) + `"}`)})
	}
	_, err = acme.Start(ctx, "erp-sync")
	require.NoError(t, err)
	var entry middleware.LogEntry
	require.Eventually(t, func() bool {
		entries, err := acme.Log(ctx, "erp-sync")
		require.NoError(t, err)
		for _, e := range entries {
			if e.Action == middleware.ActionRetentionLoss {
				entry = e
				return true
			}
		}
		return false
	}, 10*time.Second, time.Millisecond)
	assert.True(t, strings.HasPrefix(entry.Reason, "Events of the journal were removed"), entry.Reason)
	assert.NotRegexp(t, `\d+ events?`, entry.Reason)
	n, ok := lost.Load("acme/erp-sync")
	require.True(t, ok)
	assert.Positive(t, n.(uint64))
}

// A replay's job and its replay_started entry tell a tenant's integration
// that events of the range are gone, not how many: the application's own
// integration is told the count.
func TestTenants_replay_does_not_count_missing_events_to_a_tenant(t *testing.T) {
	mem := replay.NewMemoryWith(replay.MemoryConfig{MaxBytes: 64 << 10})
	tb := bustest.New(t, func(c *bus.Config) { c.Storage = mem })
	acme := tb.Integrations().Tenant("acme")
	app := tb.NewSinkIntegration(bus.Integration{ID: "live", Concurrency: 1})
	_, err := acme.Create(ctx, bus.Integration{ID: "live", Sink: bustest.NewSink()})
	require.NoError(t, err)
	for i := range 100 {
		tb.MustPublish(bus.Event{ID: fmt.Sprintf("e%03d", i), Name: "order.created", Tenant: []string{"acme", "globex"}[i%2], Payload: pad1K})
		app.WaitFor(t, i+1)
	}
	waitLag(t, tb, "")
	// Events delivered everywhere go first, also from between events a
	// group still waits for: a replay's range lacks them.
	require.NoError(t, bus.JournalOf(tb.Bus).Flush())
	first, head := mem.Bounds(bus.Topic)
	require.NoError(t, mem.SaveCursors(map[replay.CursorKey]replay.Cursor{
		{Topic: bus.Topic, Group: "waits-for-the-first"}: {Next: first, Acked: []replay.Range{{From: first + 1, To: head}}},
	}))
	for i := range 10 {
		tb.MustPublish(bus.Event{ID: fmt.Sprintf("f%03d", i), Name: "order.created", Tenant: "acme", Payload: pad1K})
	}
	dry, err := tb.Integrations().Replay(ctx, "live", replay.Request{DryRun: true})
	require.NoError(t, err)
	require.Positive(t, dry.Missing, "the application's integration is told how many")
	dry, err = acme.Replay(ctx, "live", replay.Request{DryRun: true})
	require.NoError(t, err)
	assert.True(t, dry.Partial)
	assert.Zero(t, dry.Missing, "a tenant's is not")

	job, err := acme.Replay(ctx, "live", replay.Request{})
	require.NoError(t, err)
	assert.Zero(t, job.Missing)
	require.NoError(t, job.Wait(waitCtx(t)))
	started := logReasons(t, tb.Bus, "acme/live", bus.ActionReplayStarted)
	require.Len(t, started, 1)
	assert.Contains(t, started[0], "some events published within the range")
	assert.NotRegexp(t, `\d+ events published within`, started[0])
}

type lossObserver struct {
	bus.NopObserver
	lost *sync.Map
}

func (o lossObserver) LostToRetention(integration, _ string, lost uint64) {
	o.lost.Store(integration, lost)
}

// The check in front of the filter keeps other tenants' events from a
// tenant's integration's filter and the Observer: what its filter skips
// is only ever its own tenant's.
func TestTenants_a_tenants_filter_sees_only_its_events(t *testing.T) {
	var skipped sync.Map
	tb := bustest.New(t, func(c *bus.Config) { c.Observer = skipObserver{skipped: &skipped} })
	acme := tb.Integrations().Tenant("acme")
	_, err := acme.Create(ctx, bus.Integration{ID: "erp-sync", Observes: []string{"order.shipped"}, Sink: bustest.NewSink()})
	require.NoError(t, err)
	byTenant := publishMixed(t, tb, 240)
	waitLag(t, tb, "acme/erp-sync")
	var got []string
	skipped.Range(func(k, v any) bool {
		if v.(string) == "acme/erp-sync" {
			got = append(got, k.(string))
		}
		return true
	})
	sort.Strings(got)
	assert.Equal(t, byTenant["acme"], got)
}

type skipObserver struct {
	bus.NopObserver
	skipped *sync.Map
}

func (o skipObserver) Skipped(integration, _ string, msg *message.Message) {
	o.skipped.Store(msg.UUID, integration)
}

// The sink of a tenant's integration sends no other tenant's event, even
// down a path that skipped the check in front of the filter: the event
// counts as settled (neither retried nor stored as rejected, where the
// tenant would read it) and the bus's log says so.
func TestTenants_a_tenants_sink_sends_no_other_tenants_event(t *testing.T) {
	logs := newLogRecords()
	tb := bustest.New(t, func(c *bus.Config) { c.Logger = slog.New(logs) })
	sink := bustest.NewSink()
	_, err := tb.Integrations().Tenant("acme").Create(ctx, bus.Integration{ID: "erp-sync", Sink: sink})
	require.NoError(t, err)
	for _, tenant := range []string{"globex", "", "Acme"} {
		msg := message.NewMessage("foreign-"+tenant, []byte(`{}`))
		msg.Metadata.Set(sinks.MetaName, "order.created")
		msg.Metadata.Set(sinks.MetaTenant, tenant)
		msg.SetContext(ctx)
		require.NoError(t, bus.DeliverPastTheTenantCheck(tb.Bus, "acme/erp-sync", msg))
	}
	assert.Zero(t, sink.Attempts())
	rejected, err := tb.Integrations().Rejected(ctx, "acme/erp-sync")
	require.NoError(t, err)
	assert.Empty(t, rejected)
	lines := logs.lines("Event of another tenant not sent")
	require.Len(t, lines, 3)
	for _, l := range lines {
		assert.Equal(t, "acme/erp-sync", l["integration_id"])
	}

	own := message.NewMessage("own", []byte(`{}`))
	own.Metadata.Set(sinks.MetaName, "order.created")
	own.Metadata.Set(sinks.MetaTenant, "acme")
	own.SetContext(ctx)
	require.NoError(t, bus.DeliverPastTheTenantCheck(tb.Bus, "acme/erp-sync", own))
	assert.Equal(t, "own", sink.WaitFor(t, 1)[0].ID)
}

// In a DataDir each integration's state is kept under its ref: two
// tenants' erp-sync and the application's keep their own records, cursors,
// logs, rejected events and export directories across a restart.
func TestTenants_DataDir_keeps_each_tenants_state_apart(t *testing.T) {
	dir := t.TempDir()
	cfg := bus.Config{DataDir: dir, AllowPrivateNetworks: true}
	b := startBus(t, cfg)
	all := b.Integrations()
	for _, m := range []*bus.Integrations{all.Tenant("acme"), all.Tenant("globex"), all} {
		_, err := m.Create(ctx, bus.Integration{ID: "erp-sync", Sink: file.Config{}})
		require.NoError(t, err)
	}
	_, err := all.Tenant("globex").Stop(ctx, "erp-sync")
	require.NoError(t, err)
	for i, tenant := range []string{"acme", "globex", "acme", ""} {
		require.NoError(t, b.Publish(ctx, bus.Event{ID: fmt.Sprintf("e-%d", i), Name: "order.created", Tenant: tenant}))
	}
	for _, ref := range []string{"acme/erp-sync", "erp-sync"} {
		require.Eventually(t, func() bool {
			lag, err := all.Lag(ctx, ref)
			return err == nil && lag == 0
		}, 10*time.Second, time.Millisecond)
	}
	require.NoError(t, b.Close())

	b = startBus(t, cfg)
	all = b.Integrations()
	list, err := all.List(ctx)
	require.NoError(t, err)
	require.Len(t, list, 3)
	statuses := map[string]bus.Status{}
	for _, in := range list {
		statuses[in.Ref()] = in.Status
	}
	assert.Equal(t, map[string]bus.Status{"acme/erp-sync": bus.Running, "globex/erp-sync": bus.Stopped, "erp-sync": bus.Running}, statuses)
	lag, err := all.Tenant("globex").Lag(ctx, "erp-sync")
	require.NoError(t, err)
	assert.EqualValues(t, 1, lag, "globex's one event waits for it")
	entries, err := all.Tenant("globex").Log(ctx, "erp-sync")
	require.NoError(t, err)
	assert.Equal(t, middleware.ActionIntegrationStopped, entries[0].Action)
	for _, name := range []string{"acme%2Ferp-sync", "globex%2Ferp-sync", "erp-sync"} {
		assert.DirExists(t, filepath.Join(dir, "exports", name))
	}
	exported, err := filepath.Glob(filepath.Join(dir, "exports", "acme%2Ferp-sync", "*", "*.export"))
	require.NoError(t, err)
	require.Len(t, exported, 1)
	data, err := os.ReadFile(exported[0])
	require.NoError(t, err)
	assert.Equal(t, 2, strings.Count(string(data), `"tenant":"acme"`))
	assert.NotContains(t, string(data), "globex")
}

// A tenant names no path: its files go to its own directory. Within the
// path root another tenant's export directory is a path like any other,
// and a tenant's s3 spool pointed at it would upload that tenant's files.
// The application's view may still name paths for a tenant's integration,
// and a tenant's update keeps what the application set.
func TestTenants_a_tenant_names_no_path(t *testing.T) {
	dir := t.TempDir()
	b := startBus(t, bus.Config{DataDir: dir})
	all := b.Integrations()
	globex, acme := all.Tenant("globex"), all.Tenant("acme")
	_, err := globex.Create(ctx, bus.Integration{ID: "erp-sync", Sink: file.Config{}})
	require.NoError(t, err)
	for _, path := range []string{"globex%2Ferp-sync", filepath.Join(dir, "exports", "globex%2Ferp-sync"), "acme-own"} {
		_, err = acme.Create(ctx, bus.Integration{ID: "spy", Sink: file.Config{Dir: path}})
		require.ErrorIs(t, err, bus.ErrInvalid, path)
		assert.Equal(t, []string{"configuration.dir"}, fieldsOf(err))
		require.ErrorIs(t, acme.Validate(bus.Integration{Sink: file.Config{Dir: path}}), bus.ErrInvalid)
	}
	_, err = acme.Create(ctx, bus.Integration{ID: "own", Sink: file.Config{}})
	require.NoError(t, err, "its own directory, by default")

	_, err = all.Create(ctx, bus.Integration{ID: "archive", Tenant: "acme", Sink: file.Config{Dir: "acme-archive"}})
	require.NoError(t, err, "the application names paths")
	in, err := acme.UpdateFunc(ctx, "archive", func(in *bus.Integration) error {
		in.Name = "renamed by acme"
		return nil
	})
	require.NoError(t, err, "a path the application set stays")
	assert.Equal(t, "acme-archive", in.Sink.(file.Config).Dir)
	_, err = acme.UpdateFunc(ctx, "archive", func(in *bus.Integration) error {
		cfg := in.Sink.(file.Config)
		cfg.Dir = "globex%2Ferp-sync"
		in.Sink = cfg
		return nil
	})
	require.ErrorIs(t, err, bus.ErrInvalid)
	assert.Equal(t, []string{"configuration.dir"}, fieldsOf(err))
}

// A view without a scope, which only a mistake in the bus could make,
// reaches nothing: not the application's integrations, not a tenant's.
func TestIntegrations_a_view_without_a_scope_reaches_nothing(t *testing.T) {
	tb := bustest.New(t)
	_, err := tb.Integrations().Create(ctx, bus.Integration{ID: "erp-sync", Sink: bustest.NewSink()})
	require.NoError(t, err)
	zero := bus.ZeroView(tb.Bus)
	_, err = zero.List(ctx)
	assert.Error(t, err)
	_, err = zero.Get(ctx, "erp-sync")
	assert.Error(t, err)
	assert.Error(t, zero.Delete(ctx, "erp-sync"))
	_, err = zero.Create(ctx, bus.Integration{ID: "other", Sink: bustest.NewSink()})
	assert.Error(t, err)
	_, err = zero.Tenant("acme").List(ctx)
	assert.Error(t, err)
	_, err = tb.Integrations().Get(ctx, "erp-sync")
	assert.NoError(t, err, "still there")
}

// What a tenant's integration reports about itself (a rate limit's waits,
// its traces, its health row) names it by its ref: the rate_limited entry
// lands in its own log, not in that of the application's integration of
// the same id.
func TestTenants_a_tenants_rate_limit_is_logged_in_its_own_log(t *testing.T) {
	tb := bustest.New(t)
	all := tb.Integrations()
	sink := bustest.NewSink()
	_, err := all.Tenant("acme").Create(ctx, bus.Integration{ID: "erp-sync", Sink: sink,
		RateLimit: bus.RateLimit{PerSecond: 1, Burst: 1}})
	require.NoError(t, err)
	_, err = all.Create(ctx, bus.Integration{ID: "erp-sync", Sink: bustest.NewSink()})
	require.NoError(t, err)
	tb.MustPublish(bus.Event{ID: "a-1", Name: "order.created", Tenant: "acme"}, bus.Event{ID: "a-2", Name: "order.created", Tenant: "acme"})
	sink.WaitFor(t, 1)
	actions := func(ref string) []string {
		entries, err := all.Log(ctx, ref)
		require.NoError(t, err)
		var out []string
		for _, e := range entries {
			out = append(out, e.Action)
		}
		return out
	}
	require.Eventually(t, func() bool { return contains(actions("acme/erp-sync"), bus.ActionRateLimited) },
		10*time.Second, time.Millisecond)
	assert.NotContains(t, actions("erp-sync"), bus.ActionRateLimited)

	rows := map[string]bool{}
	for _, in := range tb.Health(ctx).Integrations {
		rows[in.ID] = true
	}
	assert.Equal(t, map[string]bool{"acme/erp-sync": true, "erp-sync": true}, rows)
}
