package bus_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/internal/pgtest"
	"github.com/sinkbus/sinkbus/sinks/webhook"
)

// An order row and its event commit together, through pgx and through
// database/sql; a transaction rolled back delivers nothing.
func TestPublishTx_commits_and_rolls_back_with_the_applications_rows(t *testing.T) {
	pool, schema := pgtest.Pool(t), pgtest.Schema(t)
	b := startBus(t, pgConfig(pool, schema))
	h := newHookReceiver(t)
	_, err := b.Integrations().Create(ctx, bus.Integration{ID: "erp",
		Sink: webhook.Config{URL: h.URL + "/erp", AllowPrivateNetworks: true}})
	require.NoError(t, err)
	orders := pgx.Identifier{schema, "orders"}.Sanitize()
	_, err = pool.Exec(ctx, "CREATE TABLE "+orders+" (id text PRIMARY KEY)")
	require.NoError(t, err)

	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, "INSERT INTO "+orders+" VALUES ('o-1')")
	require.NoError(t, err)
	require.NoError(t, b.PublishTx(ctx, tx, bus.Event{ID: "o-1", Name: "order.created"}))
	require.NoError(t, tx.Rollback(ctx))

	tx, err = pool.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, "INSERT INTO "+orders+" VALUES ('o-2')")
	require.NoError(t, err)
	require.NoError(t, b.PublishTx(ctx, tx, bus.Event{ID: "o-2", Name: "order.created", Payload: []byte(`{"n":2}`)}))
	require.NoError(t, tx.Commit(ctx))

	db := stdlib.OpenDBFromPool(pool)
	t.Cleanup(func() { _ = db.Close() })
	stx, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	_, err = stx.ExecContext(ctx, "INSERT INTO "+orders+" VALUES ('o-3')")
	require.NoError(t, err)
	require.NoError(t, b.PublishSQLTx(ctx, stx, bus.Event{ID: "o-3", Name: "order.created",
		Metadata: map[string]string{"source": "sql"}}))
	require.NoError(t, stx.Commit())
	stx, err = db.BeginTx(ctx, nil)
	require.NoError(t, err)
	require.NoError(t, b.PublishSQLTx(ctx, stx, bus.Event{ID: "o-4", Name: "order.created"}))
	require.NoError(t, stx.Rollback())

	require.Eventually(t, func() bool { return h.distinct("/erp") == 2 }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, b.Publish(ctx, bus.Event{ID: "marker", Name: "order.created"}))
	require.Eventually(t, func() bool { return h.distinct("/erp") == 3 }, 10*time.Second, 10*time.Millisecond)
	h.mu.Lock()
	defer h.mu.Unlock()
	assert.Equal(t, map[string]int{"o-2": 1, "o-3": 1, "marker": 1}, h.got["/erp"], "the rolled back events are not delivered")

	err = b.PublishTx(ctx, nil, bus.Event{Name: ""})
	assert.ErrorIs(t, err, bus.ErrInvalidEvent, "validated as Publish does")
	assert.ErrorIs(t, startBus(t, bus.Config{}).PublishTx(ctx, nil, bus.Event{Name: "x"}), bus.ErrNoOutbox)
}

// outboxChildEnv makes TestOutboxChild a process that commits an event in
// a transaction on the schema it names, and dies at once (SIGKILL).
const outboxChildEnv = "SINKBUS_OUTBOX_CHILD_SCHEMA"

// TestOutboxChild is not a test: TestPublishTx_delivers_what_a_process_committed_as_it_died
// runs it in a process of its own.
func TestOutboxChild(t *testing.T) {
	schema := os.Getenv(outboxChildEnv)
	if schema == "" {
		t.Skip("child process of TestPublishTx_delivers_what_a_process_committed_as_it_died")
	}
	pool := pgtest.Pool(t)
	b, err := bus.New(pgConfig(pool, schema))
	require.NoError(t, err)
	tx, err := pool.Begin(context.Background())
	require.NoError(t, err)
	require.NoError(t, b.PublishTx(context.Background(), tx, bus.Event{ID: "committed-as-it-died", Name: "order.created"}))
	require.NoError(t, tx.Commit(context.Background()))
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}

// A process commits an event and is killed right after the commit, before
// it can do anything more: the event is delivered by the bus that starts
// next on the schema.
func TestPublishTx_delivers_what_a_process_committed_as_it_died(t *testing.T) {
	pool, schema := pgtest.Pool(t), pgtest.Schema(t)
	h := newHookReceiver(t)
	b := startBus(t, pgConfig(pool, schema))
	_, err := b.Integrations().Create(ctx, bus.Integration{ID: "erp",
		Sink: webhook.Config{URL: h.URL + "/erp", AllowPrivateNetworks: true}})
	require.NoError(t, err)
	require.NoError(t, b.Close())

	cmd := exec.Command(os.Args[0], "-test.run=^TestOutboxChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), outboxChildEnv+"="+schema)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "%s", out)
	require.Equal(t, "signal: killed", exit.Error(), "%s", out)

	startBus(t, pgConfig(pool, schema))
	require.Eventually(t, func() bool { return h.distinct("/erp") == 1 }, 10*time.Second, 10*time.Millisecond,
		"the committed event is delivered")
	h.mu.Lock()
	defer h.mu.Unlock()
	assert.Equal(t, 1, h.got["/erp"]["committed-as-it-died"], fmt.Sprint(h.got))
}
