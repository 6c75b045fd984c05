package bus_test

import (
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/bustest"
	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/replay"
)

// What earlier versions could write and this one cannot read (a rejected
// event nesting 9,998 levels inside its file, a log cut by hand, a saved
// integration this version validates more strictly) does not keep the bus
// from starting: each is set aside, kept whole for inspection, and
// reported in the log; everything else loads.
func TestBus_starts_whatever_its_stored_state_holds(t *testing.T) {
	dir := t.TempDir()
	deep := strings.Repeat("[", 9998) + strings.Repeat("]", 9998)
	// As the rejected store wrote it before its records kept payloads as
	// they are: one JSON document, which encoding/json cannot read back.
	oldDoc, err := json.Marshal(map[string]any{"integration_id": "erp", "rejected_events": []middleware.RejectedEvent{
		{EventID: "e1", Name: "order.created", Payload: json.RawMessage(deep)}}})
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "rejected"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "rejected", "erp.rejected.json"), oldDoc, 0o600))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "log"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "log", "erp.log.json"), []byte(`{"entries":[`), 0o600))
	saved := `[
		{"id":"erp","integration_type":"bustest","observes":["order.*"]},
		{"id":"broken","integration_type":"bustest","observes":[""]},
		{"id":"nul","name":"a\u0000b","integration_type":"bustest"},
		{"id":"slow","integration_type":"bustest","delivery":{"timeout":"1000h"}},
		{"id":"erp","integration_type":"bustest"},
		{"id":"gone","integration_type":"no-longer-registered"}
	]`
	require.NoError(t, os.WriteFile(filepath.Join(dir, "integrations.json"), []byte(saved), 0o600))

	logs := &lockedBuffer{}
	tb := bustest.New(t, func(c *bus.Config) {
		c.DataDir = dir
		c.Storage = replay.NewMemory()
		c.Logger = slog.New(slog.NewTextHandler(logs, nil))
	})

	list, err := tb.Integrations().List(ctx)
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, "erp", list[0].ID)
	for _, want := range []string{"erp.rejected.json", "erp.log.json", `"broken"`, `"erp" saved twice`, "no-longer-registered", `"nul"`, `"slow"`} {
		assert.Contains(t, logs.String(), strings.ReplaceAll(want, `"`, `\"`), "quoted in the log line's error")
	}
	_, err = os.Stat(filepath.Join(dir, "rejected", "erp.rejected.json"+middleware.UnreadableSuffix))
	assert.NoError(t, err, "the unreadable rejected events are kept")
	aside, err := filepath.Glob(filepath.Join(dir, "integrations.json.*.unreadable"))
	require.NoError(t, err)
	require.Len(t, aside, 1)
	kept, err := os.ReadFile(aside[0])
	require.NoError(t, err)
	assert.Equal(t, saved, string(kept), "the saved integrations are kept as they were")

	// The bus works: a change saves the file again, the copy stays.
	tb.Create(bus.Integration{ID: "next", Sink: bustest.NewSink()})
	_, err = os.Stat(aside[0])
	assert.NoError(t, err)
}

// The way the unreadable rejected file was made: an event nesting as deep
// as the bus takes is rejected, and the rejected store reads it back after
// a restart. Deeper ones are refused by Publish (see
// TestBus_Publish_refuses_invalid_events_naming_the_field_and_publishes_none).
func TestBus_rejected_event_at_the_deepest_payload_survives_a_restart(t *testing.T) {
	dir := t.TempDir()
	cfg := bus.Config{DataDir: dir, Storage: replay.NewMemory(), Sinks: bustest.Registry(), Clock: bustest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))}
	b := startBus(t, cfg)
	sink := bustest.NewSink()
	sink.FailNext(1, 400)
	_, err := b.Integrations().Create(ctx, bus.Integration{ID: "erp", Sink: sink})
	require.NoError(t, err)
	deep := json.RawMessage(strings.Repeat("[", bus.DefaultMaxPayloadDepth) + strings.Repeat("]", bus.DefaultMaxPayloadDepth))
	require.NoError(t, b.Publish(ctx, bus.Event{ID: "deep", Name: "order.created", Payload: deep}))
	require.Eventually(t, func() bool {
		l, _ := b.Integrations().Rejected(ctx, "erp")
		return len(l) == 1
	}, 10*time.Second, 5*time.Millisecond)
	require.NoError(t, b.Close())

	b = startBus(t, cfg)
	got, err := b.Integrations().RejectedEvent(ctx, "erp", "deep")
	require.NoError(t, err)
	assert.JSONEq(t, string(deep), string(got.Payload))
}
