package bus_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/internal/pgtest"
	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/replay"
	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/webhook"
)

// eachStore runs fn once per durable store: a DataDir, and a schema of its
// own on PostgreSQL (skipped without the server). store returns the
// configuration of a bus on that store, the same store at every call.
func eachStore(t *testing.T, fn func(t *testing.T, store func() bus.Config)) {
	t.Run("DataDir", func(t *testing.T) {
		dir := t.TempDir()
		fn(t, func() bus.Config { return bus.Config{DataDir: dir, AllowPrivateNetworks: true} })
	})
	t.Run("Postgres", func(t *testing.T) {
		pool, schema := pgtest.Pool(t), pgtest.Schema(t)
		fn(t, func() bus.Config { return pgConfig(pool, schema) })
	})
}

// pgConfig is a bus on schema, with a short lease.
func pgConfig(pool *pgxpool.Pool, schema string) bus.Config {
	return bus.Config{AllowPrivateNetworks: true, Postgres: &bus.Postgres{
		Pool: pool, Schema: schema, LeaseTTL: 2 * time.Second}}
}

// hookReceiver counts the webhook requests of each integration (by path).
type hookReceiver struct {
	*httptest.Server
	mu  sync.Mutex
	got map[string]map[string]int // path -> event id -> deliveries
}

func newHookReceiver(t *testing.T) *hookReceiver {
	h := &hookReceiver{got: make(map[string]map[string]int)}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var env sinks.Envelope
		if err := json.NewDecoder(req.Body).Decode(&env); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		if h.got[req.URL.Path] == nil {
			h.got[req.URL.Path] = make(map[string]int)
		}
		h.got[req.URL.Path][env.ID]++
		h.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(h.Close)
	return h
}

// distinct returns how many events integration path received.
func (h *hookReceiver) distinct(path string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.got[path])
}

// deliveries returns how many requests integration path received.
func (h *hookReceiver) deliveries(path string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, c := range h.got[path] {
		n += c
	}
	return n
}

// leaseHolder returns who holds the lease of ref.
func leaseHolder(t *testing.T, pool *pgxpool.Pool, schema, ref string) string {
	t.Helper()
	var owner string
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT owner FROM `+pgx.Identifier{schema}.Sanitize()+
		`.journal_leases WHERE grp = $1`, ref).Scan(&owner))
	return owner
}

// leaseOwners counts the live leases of each replica in schema.
func leaseOwners(t *testing.T, pool *pgxpool.Pool, schema string) map[string]int {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT owner, count(*) FROM `+pgx.Identifier{schema}.Sanitize()+
		`.journal_leases WHERE expires_at > clock_timestamp() GROUP BY owner`)
	require.NoError(t, err)
	out := make(map[string]int)
	for rows.Next() {
		var owner string
		var n int
		require.NoError(t, rows.Scan(&owner, &n))
		out[owner] = n
	}
	require.NoError(t, rows.Err())
	return out
}

// twoReplicas runs replicas "a" and "b" on a schema of their own.
func twoReplicas(t *testing.T) (pool *pgxpool.Pool, schema string, a, b *bus.Bus) {
	pool, schema = pgtest.Pool(t), pgtest.Schema(t)
	cfgA, cfgB := pgConfig(pool, schema), pgConfig(pool, schema)
	cfgA.Postgres.(*bus.Postgres).Replica, cfgB.Postgres.(*bus.Postgres).Replica = "a", "b"
	return pool, schema, startBus(t, cfgA), startBus(t, cfgB)
}

// Two replicas on one schema: an integration created through one exists on
// the other; ten integrations are split about evenly, each event reaches
// each integration, and a stop asked of either replica stops delivery on
// the one delivering within a second. When a replica closes, the other
// takes its integrations over.
func TestPostgres_replicas_share_integrations_and_split_the_work(t *testing.T) {
	pool, schema, a, b := twoReplicas(t)
	h := newHookReceiver(t)
	for i := range 10 {
		_, err := a.Integrations().Create(ctx, bus.Integration{ID: fmt.Sprintf("i%d", i),
			Sink: webhook.Config{URL: fmt.Sprintf("%s/i%d", h.URL, i), AllowPrivateNetworks: true}})
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool {
		list, err := b.Integrations().List(ctx)
		return err == nil && len(list) == 10
	}, 2*time.Second, 10*time.Millisecond, "b knows a's integrations")
	require.Eventually(t, func() bool {
		o := leaseOwners(t, pool, schema)
		return o["a"] == 5 && o["b"] == 5
	}, 10*time.Second, 50*time.Millisecond, "the work is split evenly")

	for i := range 50 {
		pub := a
		if i%2 == 1 {
			pub = b
		}
		require.NoError(t, pub.Publish(ctx, bus.Event{ID: fmt.Sprintf("e%d", i), Name: "order.created"}))
	}
	for i := range 10 {
		require.Eventually(t, func() bool { return h.distinct(fmt.Sprintf("/i%d", i)) == 50 },
			10*time.Second, 10*time.Millisecond, "integration i%d receives every event", i)
	}

	for _, r := range []*bus.Bus{a, b} { // the one delivering and the other answer the same
		require.Eventually(t, func() bool {
			lag, err := r.Integrations().Lag(ctx, "i1")
			return err == nil && lag == 0
		}, 5*time.Second, 10*time.Millisecond)
	}
	ca, _ := a.Events().Cursor("i1")
	cb, _ := b.Events().Cursor("i1")
	assert.Equal(t, ca, cb, "the journal view answers the same on both")
	assert.Equal(t, a.Events().Head(), ca)
	lagging := a
	if leaseHolder(t, pool, schema, "i2") == "a" {
		lagging = b
	}
	_, err := lagging.Integrations().Stop(ctx, "i2")
	require.NoError(t, err)
	for _, r := range []*bus.Bus{a, b} {
		require.Eventually(t, func() bool {
			state, err := r.Integrations().State(ctx, "i2")
			return err == nil && state == bus.StateStopped
		}, 5*time.Second, 10*time.Millisecond, "stopped on both, the one delivering included")
	}
	require.NoError(t, a.Publish(ctx, bus.Event{ID: "while-stopped", Name: "order.created"}))
	for _, r := range []*bus.Bus{a, b} {
		require.Eventually(t, func() bool {
			lag, err := r.Integrations().Lag(ctx, "i2")
			return err == nil && lag == 1
		}, 5*time.Second, 10*time.Millisecond, "a stopped integration's lag, the same on both")
	}
	_, err = lagging.Integrations().Start(ctx, "i2")
	require.NoError(t, err)

	require.Eventually(t, func() bool {
		o := leaseOwners(t, pool, schema)
		return o["a"] == 5 && o["b"] == 5
	}, 10*time.Second, 10*time.Millisecond, "split again once i2 runs again")
	holder, notHolder := a, b
	if leaseHolder(t, pool, schema, "i3") == "b" {
		holder, notHolder = b, a
	}
	require.Eventually(t, func() bool {
		state, err := holder.Integrations().State(ctx, "i3")
		return err == nil && state == bus.StateRunning
	}, 5*time.Second, 10*time.Millisecond, "running where it is delivered")
	state, err := notHolder.Integrations().State(ctx, "i3")
	require.NoError(t, err)
	assert.Equal(t, bus.StateElsewhere, state)

	// A replay asked of the replica that does not deliver i1 runs on the
	// one that does.
	other := a
	if leaseHolder(t, pool, schema, "i1") == "a" {
		other = b
	}
	job, err := other.Integrations().Replay(ctx, "i1", replay.Request{})
	require.NoError(t, err)
	assert.Equal(t, 51, job.Matched)
	require.NoError(t, job.Wait(ctx))
	assert.Equal(t, 102, h.deliveries("/i1"), "every event delivered again")

	// A stop asked of b stops i0 wherever it is delivered, within a second.
	require.Eventually(t, func() bool { return h.distinct("/i0") == 51 }, 10*time.Second, 10*time.Millisecond)
	_, err = b.Integrations().Stop(ctx, "i0")
	require.NoError(t, err)
	time.Sleep(time.Second)
	require.NoError(t, a.Publish(ctx, bus.Event{ID: "after-stop", Name: "order.created"}))
	require.Eventually(t, func() bool { return h.distinct("/i1") == 52 }, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, 51, h.distinct("/i0"), "the stopped integration delivers nothing more")
	got, err := a.Integrations().Get(ctx, "i0")
	require.NoError(t, err)
	assert.Equal(t, bus.Stopped, got.Status, "both replicas answer the same")

	// b leaves: a delivers everything.
	require.NoError(t, b.Close())
	require.Eventually(t, func() bool { return leaseOwners(t, pool, schema)["a"] == 9 },
		10*time.Second, 50*time.Millisecond, "a takes b's integrations over")
	require.NoError(t, a.Publish(ctx, bus.Event{ID: "after-leave", Name: "order.created"}))
	for i := 1; i < 10; i++ {
		require.Eventually(t, func() bool { return h.distinct(fmt.Sprintf("/i%d", i)) == 53 },
			10*time.Second, 10*time.Millisecond, "integration i%d", i)
	}
}

func TestConfig_Postgres_problems_name_their_fields(t *testing.T) {
	err := bus.Config{DataDir: "x", Storage: replay.NewMemory(), Postgres: &bus.Postgres{LeaseTTL: time.Millisecond}}.Validate()
	require.ErrorContains(t, err, "DataDir: must be empty with Postgres")
	require.ErrorContains(t, err, "Storage: must be nil with Postgres")
	require.ErrorContains(t, err, "Postgres.URL: required without Postgres.Pool")
	require.ErrorContains(t, err, "Postgres.LeaseTTL: must be at least 1s")
	err = bus.Config{Postgres: &bus.Postgres{URL: "postgres://%zz"}}.Validate()
	require.ErrorContains(t, err, "Postgres.URL: is not a PostgreSQL connection string")
}

// The circuit that counts is the one of the replica delivering: both
// replicas show it, and a reset through either closes it.
func TestPostgres_circuit_is_the_delivering_replicas(t *testing.T) {
	pool, schema := pgtest.Pool(t), pgtest.Schema(t)
	cfgA, cfgB := pgConfig(pool, schema), pgConfig(pool, schema)
	cfgA.Postgres.(*bus.Postgres).Replica, cfgB.Postgres.(*bus.Postgres).Replica = "a", "b"
	a, b := startBus(t, cfgA), startBus(t, cfgB)
	var up atomic.Bool
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if !up.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(down.Close)
	in := bus.Integration{ID: "down", Sink: webhook.Config{URL: down.URL, AllowPrivateNetworks: true}}
	in.Delivery.Retry = middleware.RetryPolicy{InitialInterval: time.Millisecond, MaxInterval: time.Millisecond}
	in.Delivery.Breaker = middleware.BreakerPolicy{WarnAfter: 1, OpenAfter: 2, CoolDown: time.Hour, MaxCoolDown: time.Hour}
	_, err := a.Integrations().Create(ctx, in)
	require.NoError(t, err)
	require.NoError(t, a.Publish(ctx, bus.Event{Name: "order.created"}))
	for _, r := range []*bus.Bus{a, b} {
		require.Eventually(t, func() bool {
			st, err := r.Integrations().Circuit(ctx, "down")
			return err == nil && st.State == middleware.StateOpen
		}, 10*time.Second, 10*time.Millisecond, "both replicas show the open circuit")
	}
	notHolder := a
	if leaseHolder(t, pool, schema, "down") == "a" {
		notHolder = b
	}
	up.Store(true) // the destination is back: the reset's delivery succeeds
	require.NoError(t, notHolder.Integrations().ResetCircuit(ctx, "down"))
	for _, r := range []*bus.Bus{a, b} {
		st, err := r.Integrations().Circuit(ctx, "down")
		require.NoError(t, err)
		assert.NotEqual(t, middleware.StateOpen, st.State, "reset where it is delivered")
	}
}

// Two replicas creating one id at the same instant: one succeeds, the other
// answers ErrExists, and what is saved is the winner's.
func TestPostgres_concurrent_creates_of_one_id_one_wins(t *testing.T) {
	pool, schema := pgtest.Pool(t), pgtest.Schema(t)
	cfgA, cfgB := pgConfig(pool, schema), pgConfig(pool, schema)
	cfgA.Postgres.(*bus.Postgres).Replica, cfgB.Postgres.(*bus.Postgres).Replica = "a", "b"
	replicas := []*bus.Bus{startBus(t, cfgA), startBus(t, cfgB)}
	for round := range 20 {
		id := fmt.Sprintf("erp-%d", round)
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i, b := range replicas {
			wg.Go(func() {
				_, errs[i] = b.Integrations().Create(ctx, bus.Integration{ID: id, Name: fmt.Sprintf("by %d", i),
					Sink: webhook.Config{URL: "http://127.0.0.1:1/" + id, AllowPrivateNetworks: true}})
			})
		}
		wg.Wait()
		won := -1
		for i, err := range errs {
			if err == nil {
				require.Equal(t, -1, won, "round %d: both replicas created %s", round, id)
				won = i
				continue
			}
			require.ErrorIs(t, err, bus.ErrExists, "round %d", round)
		}
		require.NotEqual(t, -1, won, "round %d: neither created %s", round, id)
		for _, b := range replicas {
			require.Eventually(t, func() bool {
				in, err := b.Integrations().Get(ctx, id)
				return err == nil && in.Name == fmt.Sprintf("by %d", won)
			}, 2*time.Second, 10*time.Millisecond, "round %d: every replica shows the winner's", round)
		}
	}
}

// Changes of one integration made through two replicas at once are all
// kept: each applies to the integration as the last change left it, as on
// one process, never to a copy another replica changed meanwhile.
func TestPostgres_concurrent_changes_through_two_replicas_lose_none(t *testing.T) {
	_, _, a, b := twoReplicas(t)
	h := newHookReceiver(t)
	_, err := a.Integrations().Create(ctx, bus.Integration{ID: "i", Observes: []string{"base.created"},
		Sink: webhook.Config{URL: h.URL, AllowPrivateNetworks: true}})
	require.NoError(t, err)
	require.Eventually(t, func() bool { _, err := b.Integrations().Get(ctx, "i"); return err == nil },
		5*time.Second, 10*time.Millisecond)
	const each = 8
	var wg sync.WaitGroup
	for n := range 2 * each {
		via := a
		if n%2 == 1 {
			via = b
		}
		wg.Go(func() {
			_, err := via.Integrations().UpdateFunc(ctx, "i", func(in *bus.Integration) error {
				in.Observes = append(in.Observes, fmt.Sprintf("k%d.created", n))
				return nil
			})
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	for _, r := range []*bus.Bus{a, b} {
		require.Eventually(t, func() bool {
			in, err := r.Integrations().Get(ctx, "i")
			return err == nil && len(in.Observes) == 1+2*each
		}, 5*time.Second, 10*time.Millisecond, "every change kept, seen by both replicas")
	}
}
