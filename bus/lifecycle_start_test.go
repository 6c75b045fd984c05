package bus_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/bustest"
	"github.com/sinkbus/sinkbus/bus/formats"
	"github.com/sinkbus/sinkbus/internal/pgtest"
	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/replay"
	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/file"
	"github.com/sinkbus/sinkbus/sinks/s3"
)

var errUnreachable = errors.New("cannot reach the broker")

// A creation whose sink cannot start leaves nothing: no record, cursor or
// log, so that the same request can be sent again.
func TestIntegrations_Create_whose_sink_cannot_start_leaves_nothing(t *testing.T) {
	t.Run("memory", func(t *testing.T) { testCreateSinkCannotStart(t, lifecycleBus(t)) })
	t.Run("Postgres", func(t *testing.T) { // the replica creating it does not deliver it yet: it checks the sink
		pool, schema := pgtest.Pool(t), pgtest.Schema(t)
		testCreateSinkCannotStart(t, lifecycleBus(t, func(c *bus.Config) { c.Postgres = pgConfig(pool, schema).Postgres }))
	})
}

func testCreateSinkCannotStart(t *testing.T, tb *bustest.Bus) {
	for range 2 {
		_, err := tb.Integrations().Create(ctx, bus.Integration{ID: "mq", Sink: &testSink{newErr: errUnreachable}})
		require.ErrorIs(t, err, errUnreachable, "not ErrExists the second time")
	}
	_, err := tb.Integrations().Get(ctx, "mq")
	assert.ErrorIs(t, err, bus.ErrNotFound)
	list, err := tb.Integrations().List(ctx)
	require.NoError(t, err)
	assert.Empty(t, list)
	_, ok := tb.Events().Cursor("mq")
	assert.False(t, ok, "no cursor")
	_, err = tb.Integrations().Log(ctx, "mq")
	assert.ErrorIs(t, err, bus.ErrNotFound)

	// The id is free, and its log starts afresh.
	tb.Create(bus.Integration{ID: "mq", Sink: &testSink{}})
	entries, err := tb.Integrations().Log(ctx, "mq")
	require.NoError(t, err)
	var actions []string
	for _, e := range entries {
		actions = append(actions, e.Action)
	}
	assert.Equal(t, []string{middleware.ActionIntegrationStarted, "integration_created"}, actions)
}

// Saved: the record is rolled back on disk too.
func TestIntegrations_Create_whose_sink_cannot_start_is_not_saved(t *testing.T) {
	dir := t.TempDir()
	open := func() *bus.Bus {
		reg := bustest.Registry()
		require.NoError(t, reg.Register(sinks.Type{Name: testSinkType, Decode: func(json.RawMessage) (sinks.Config, error) {
			return &testSink{newErr: errUnreachable}, nil
		}}))
		return startBus(t, bus.Config{DataDir: dir, Storage: replay.NewMemory(), Sinks: reg})
	}
	b := open()
	_, _, err := formats.Create(ctx, b.Integrations(), []byte(`{"id":"mq","integration_type":"lifecycle"}`))
	require.ErrorIs(t, err, errUnreachable)
	require.NoError(t, b.Close())
	_, err = open().Integrations().Get(ctx, "mq")
	assert.ErrorIs(t, err, bus.ErrNotFound)
}

// A sink that cannot run on this bus is refused at creation, stopped or
// not, with the field, as validation would: a file or s3 sink without a
// directory on a bus that has none.
func TestIntegrations_Create_refuses_a_sink_the_bus_cannot_build_naming_the_field(t *testing.T) {
	tb := lifecycleBus(t)
	for _, tc := range []struct {
		sink  sinks.Config
		field string
	}{
		{file.Config{}, "configuration.dir"},
		{s3.Config{Bucket: "exports"}, "configuration.spool_dir"},
	} {
		for _, status := range []bus.Status{bus.Running, bus.Stopped} {
			_, err := tb.Integrations().Create(ctx, bus.Integration{ID: "out", Sink: tc.sink, Status: status})
			require.ErrorIs(t, err, bus.ErrInvalid, tc.field)
			assert.Equal(t, []string{tc.field}, fieldsOf(err), status)
			_, err = tb.Integrations().Get(ctx, "out")
			assert.ErrorIs(t, err, bus.ErrNotFound, "not saved")
		}
	}

	// The same from JSON, and as an update of an integration that has a dir.
	_, _, err := formats.Create(ctx, tb.Integrations(), []byte(`{"id":"out","integration_type":"file","configuration":{}}`))
	require.ErrorIs(t, err, bus.ErrInvalid)
	assert.Equal(t, []string{"configuration.dir"}, fieldsOf(err))
	tb.Create(bus.Integration{ID: "out", Sink: file.Config{Dir: t.TempDir()}, Status: bus.Stopped, UnconfinedPaths: true})
	_, err = tb.Integrations().UpdateFunc(ctx, "out", func(in *bus.Integration) error {
		in.Sink = file.Config{}
		return nil
	})
	require.ErrorIs(t, err, bus.ErrInvalid)
	assert.Equal(t, []string{"configuration.dir"}, fieldsOf(err))
}

// A start that fails leaves the status as it was, and logs nothing.
func TestIntegrations_Start_that_fails_keeps_the_integration_stopped(t *testing.T) {
	tb := lifecycleBus(t)
	tb.Create(bus.Integration{ID: "mq", Sink: &testSink{newErr: errUnreachable}, Status: bus.Stopped})
	before, err := tb.Integrations().Get(ctx, "mq")
	require.NoError(t, err)
	_, err = tb.Integrations().Start(ctx, "mq")
	require.ErrorIs(t, err, errUnreachable)
	after, err := tb.Integrations().Get(ctx, "mq")
	require.NoError(t, err)
	assert.Equal(t, before, after, "status and updated_at unchanged")
	entries, err := tb.Integrations().Log(ctx, "mq")
	require.NoError(t, err)
	assert.Len(t, entries, 1, "integration_created only")
}

// An update whose new sink cannot start is refused, and the integration
// goes on delivering with the old one.
func TestIntegrations_Update_whose_sink_cannot_start_keeps_the_old_one(t *testing.T) {
	tb := lifecycleBus(t)
	old := &testSink{}
	tb.Create(bus.Integration{ID: "mq", Observes: []string{"order.*"}, Sink: old})
	_, err := tb.Integrations().UpdateFunc(ctx, "mq", func(in *bus.Integration) error {
		in.Name, in.Sink = "broken", &testSink{name: "broken", newErr: errUnreachable}
		return nil
	})
	require.ErrorIs(t, err, errUnreachable)
	got, err := tb.Integrations().Get(ctx, "mq")
	require.NoError(t, err)
	assert.Equal(t, bus.Running, got.Status)
	assert.Empty(t, got.Name, "the update is not kept")
	tb.MustPublish(bus.Event{ID: "e1", Name: "order.created"})
	waitLag(t, tb, "mq")
	assert.Equal(t, []string{"e1"}, old.delivered(), "the old sink delivers")
}

// Delete stops the integration, then lets its sink remove what it keeps
// (sinks.Purger) with the Env it was built with; a purge that fails does
// not fail Delete.
func TestIntegrations_Delete_purges_the_sink_after_stopping_it(t *testing.T) {
	notOnPostgres(t, "it checks the DataDir the sink is purged with")
	dir := t.TempDir()
	tb := lifecycleBus(t, func(c *bus.Config) { c.DataDir = dir; c.Storage = replay.NewMemory() })
	sink := &testSink{purgeErr: errors.New("spool in use")}
	tb.Create(bus.Integration{ID: "exp", Concurrency: 3, Sink: sink})
	require.NoError(t, tb.Integrations().Delete(ctx, "exp"))

	sink.mu.Lock()
	defer sink.mu.Unlock()
	require.Len(t, sink.purged, 1)
	require.Len(t, sink.envs, 1)
	built, purged := sink.envs[0], sink.purged[0]
	assert.Equal(t, "exp", purged.IntegrationID)
	assert.Equal(t, dir, purged.DataDir)
	assert.Equal(t, built.IntegrationID, purged.IntegrationID)
	assert.Equal(t, built.DataDir, purged.DataDir)
	assert.Equal(t, 3, purged.Concurrency)
	assert.NotNil(t, purged.Logger)
	assert.NotNil(t, purged.Log)
	assert.Zero(t, sink.atPurge, "the sink was closed before the purge")
	_, err := tb.Integrations().Get(ctx, "exp")
	assert.ErrorIs(t, err, bus.ErrNotFound)
}
