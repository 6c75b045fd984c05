package bus_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/bustest"
	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/replay/segments"
)

// probe asks h for path and returns the status and the decoded body.
func probe(t *testing.T, h http.Handler, path string) (int, bus.Health) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	var got bus.Health
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got), "%s", rec.Body)
	return rec.Code, got
}

func stateOf(h bus.Health, id string) bus.IntegrationHealth {
	for _, in := range h.Integrations {
		if in.ID == id {
			return in
		}
	}
	return bus.IntegrationHealth{}
}

// A bus is ready while Run delivers and the journal takes appends, whatever
// its destinations do: a stopped integration and one paused by its open
// circuit are reported, and do not make it unready.
func TestBus_Health_reports_each_integration_and_stays_ready_when_a_destination_is_down(t *testing.T) {
	tb := bustest.New(t)
	tb.NewSinkIntegration(bus.Integration{ID: "ok"})
	down := tb.NewSinkIntegration(bus.Integration{ID: "down", Delivery: middleware.Settings{
		Breaker: middleware.BreakerPolicy{WarnAfter: 1, OpenAfter: 1}}})
	tb.NewSinkIntegration(bus.Integration{ID: "off", Status: bus.Stopped})
	down.FailNext(100, 503)
	tb.MustPublish(bus.Event{Name: "order.created"}, bus.Event{Name: "order.created"})
	require.Eventually(t, func() bool {
		st, err := tb.Integrations().Circuit(ctx, "down")
		return err == nil && st.State == middleware.StateOpen
	}, 10*time.Second, time.Millisecond)
	waitLag(t, tb, "ok")

	h := tb.HealthHandler()
	code, got := probe(t, h, "/readyz")
	assert.Equal(t, http.StatusOK, code)
	assert.True(t, got.Ready)
	assert.True(t, got.Live)
	assert.True(t, got.Running)
	assert.True(t, got.Journal.Appendable)
	assert.Equal(t, bus.IntegrationHealth{ID: "down", Type: bustest.SinkType, State: bus.StatePaused, Circuit: "open", Lag: 2}, stateOf(got, "down"))
	assert.Equal(t, bus.IntegrationHealth{ID: "ok", Type: bustest.SinkType, State: bus.StateRunning, Circuit: "closed"}, stateOf(got, "ok"))
	off := stateOf(got, "off")
	assert.Equal(t, bus.StateStopped, off.State)
	assert.EqualValues(t, 2, off.Lag, "a stopped integration's backlog waits")
	assert.Equal(t, []string{"down", "off", "ok"}, []string{got.Integrations[0].ID, got.Integrations[1].ID, got.Integrations[2].ID})
	for _, ih := range got.Integrations {
		st, err := tb.Integrations().State(ctx, ih.ID)
		require.NoError(t, err)
		assert.Equal(t, ih.State, st, "Integrations.State says what Health says of %s", ih.ID)
	}
	_, err := tb.Integrations().State(ctx, "nope")
	assert.ErrorIs(t, err, bus.ErrNotFound)

	code, got = probe(t, h, "/healthz/live")
	assert.Equal(t, http.StatusOK, code)
	assert.True(t, got.Live)
	assert.Empty(t, got.Integrations, "liveness answers liveness only")

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/readyz", nil))
	assert.Equal(t, http.StatusMethodNotAllowed, rec.Code)
}

// Before Run the bus is live but not ready, its integrations starting; an
// integration whose sink cannot start when Run starts it is failed, and
// said so in the log, at error level, with its id; after Close the bus is
// neither live nor ready.
func TestBus_Health_before_Run_after_a_failed_start_and_after_Close(t *testing.T) {
	logs := newLogRecords()
	b, err := bus.New(bus.Config{Sinks: lifecycleRegistry(t), Logger: slog.New(logs)})
	require.NoError(t, err)
	_, err = b.Integrations().Create(ctx, bus.Integration{ID: "broken", Sink: &testSink{newErr: errors.New("broker unreachable")}})
	require.NoError(t, err)

	h := b.HealthHandler()
	code, got := probe(t, h, "/readyz")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.True(t, got.Live)
	assert.False(t, got.Running)
	assert.Equal(t, bus.StateStarting, stateOf(got, "broken").State)
	st, err := b.Integrations().State(ctx, "broken")
	require.NoError(t, err)
	assert.Equal(t, bus.StateStarting, st)
	code, _ = probe(t, h, "/livez")
	assert.Equal(t, http.StatusOK, code)

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- b.Run(runCtx) }()
	<-b.Running()
	got = b.Health(ctx)
	assert.True(t, got.Ready, "one integration that cannot start does not make the bus unready")
	assert.Equal(t, bus.StateFailed, stateOf(got, "broken").State)
	st, err = b.Integrations().State(ctx, "broken")
	require.NoError(t, err)
	assert.Equal(t, bus.StateFailed, st)
	lines := logs.lines("Cannot start integration")
	require.Len(t, lines, 1)
	assert.Equal(t, "ERROR", lines[0]["level"])
	assert.Equal(t, "broken", lines[0]["integration_id"])
	assert.Contains(t, lines[0]["error"], "broker unreachable")

	require.NoError(t, b.Close())
	require.NoError(t, <-ran)
	code, got = probe(t, h, "/livez")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.False(t, got.Live)
	code, got = probe(t, h, "/readyz")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.False(t, got.Journal.Appendable)
}

// Readiness fails while the journal cannot append: here its topic's
// directory is gone, so the next segment cannot be created and the
// segment log refuses appends until it is reopened. The bus stays live.
func TestBus_Health_not_ready_while_the_journal_cannot_append(t *testing.T) {
	dir := t.TempDir()
	st, err := segments.Open(segments.Config{Dir: filepath.Join(dir, "journal"), SegmentBytes: 1})
	require.NoError(t, err)
	b := startBus(t, bus.Config{DataDir: dir, Storage: st})
	require.NoError(t, b.Publish(ctx, bus.Event{Name: "order.created"}))
	h := b.HealthHandler()
	code, _ := probe(t, h, "/readyz")
	require.Equal(t, http.StatusOK, code)

	topicDir := filepath.Join(dir, "journal", bus.Topic)
	require.NoError(t, os.RemoveAll(topicDir))
	require.NoError(t, os.WriteFile(topicDir, nil, 0o600))
	require.Error(t, b.Publish(ctx, bus.Event{Name: "order.created"}))

	code, got := probe(t, h, "/readyz")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.False(t, got.Ready)
	assert.True(t, got.Running)
	assert.False(t, got.Journal.Appendable)
	assert.Contains(t, got.Journal.Error, `journal topic "events"`)
	code, _ = probe(t, h, "/livez")
	assert.Equal(t, http.StatusOK, code)
}
