package bus_test

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/internal/pgtest"
)

// reconcilePGChildEnv makes TestReconcilePostgresChild a replica that
// opens a bus on the PostgreSQL schema it names ("url schema at"), waits
// for the moment at (Unix nanoseconds), reconciles declared and prints what
// it did as JSON.
const reconcilePGChildEnv = "SINKBUS_RECONCILE_PG_CHILD"

// TestReconcilePostgresChild is not a test: TestReconcile_two_replicas_at_once_on_postgres
// re-executes the test binary to run it.
func TestReconcilePostgresChild(t *testing.T) {
	args := strings.Fields(os.Getenv(reconcilePGChildEnv))
	if len(args) != 3 {
		t.Skip("child process of TestReconcile_two_replicas_at_once_on_postgres")
	}
	at, _ := strconv.ParseInt(args[2], 10, 64)
	reconcileAndExit(bus.Config{AllowPrivateNetworks: true,
		Postgres: &bus.Postgres{URL: args[0], Schema: args[1], LeaseTTL: 2 * time.Second}}, time.Unix(0, at))
}

// Two replicas on one PostgreSQL schema reconcile the same declaration at
// the same moment: it is applied once, and the other finds nothing to do.
func TestReconcile_two_replicas_at_once_on_postgres(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	url, pool, schema := pgtest.URL(t), pgtest.Pool(t), pgtest.Schema(t)
	// The schema exists before the children race to reconcile, not to
	// migrate (which is tested apart).
	b := startBus(t, pgConfig(pool, schema))
	require.NoError(t, b.Close())

	for round := range 3 {
		at := strconv.FormatInt(time.Now().Add(3*time.Second).UnixNano(), 10)
		env := reconcilePGChildEnv + "=" + url + " " + schema + " " + at
		results := reconcileInTwoChildren(t, "TestReconcilePostgresChild", env)
		if round == 0 {
			assert.Equal(t, bus.Reconciled{Created: []string{"crm", "erp"}}, results[0], "round %d", round)
			assert.Equal(t, bus.Reconciled{Unchanged: []string{"crm", "erp"}}, results[1], "round %d", round)
		} else {
			for _, res := range results {
				assert.Equal(t, bus.Reconciled{Unchanged: []string{"crm", "erp"}}, res, "round %d", round)
			}
		}
	}

	b = startBus(t, pgConfig(pool, schema))
	list, err := b.Integrations().List(ctx)
	require.NoError(t, err)
	require.Len(t, list, 2)
	for _, in := range list {
		assert.Equal(t, "shop", in.Owner)
	}
}
