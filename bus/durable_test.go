package bus_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/sinks/webhook"
)

func TestBus_DataDir_keeps_integrations_logs_and_cursors_across_restarts(t *testing.T) {
	eachStore(t, testKeepsAcrossRestarts)
}

func testKeepsAcrossRestarts(t *testing.T, store func() bus.Config) {
	rcv := newReceiver(t)
	cfg := webhook.Config{URL: rcv.URL, SecretKey: secret, AllowPrivateNetworks: true}

	b1 := startBus(t, store())
	_, err := b1.Integrations().Create(ctx, bus.Integration{ID: "erp", Observes: []string{"order.*"}, Sink: cfg})
	require.NoError(t, err)
	require.NoError(t, b1.Publish(ctx, bus.Event{ID: "e1", Name: "order.created"}))
	rcv.wait(t, 1)
	_, err = b1.Integrations().Stop(ctx, "erp")
	require.NoError(t, err)
	require.NoError(t, b1.Publish(ctx, bus.Event{ID: "e2", Name: "order.created"}, bus.Event{ID: "e3", Name: "order.fulfilled"}))
	require.NoError(t, b1.Close())

	b2 := startBus(t, store())
	in, err := b2.Integrations().Get(ctx, "erp")
	require.NoError(t, err)
	assert.Equal(t, bus.Stopped, in.Status)
	entries, err := b2.Integrations().Log(ctx, "erp")
	require.NoError(t, err)
	assert.Equal(t, middleware.ActionIntegrationStopped, entries[0].Action)
	lag, err := b2.Integrations().Lag(ctx, "erp")
	require.NoError(t, err)
	assert.GreaterOrEqual(t, lag, uint64(2), "e2 and e3 wait (e1 may come again: at-least-once)")

	_, err = b2.Integrations().Start(ctx, "erp")
	require.NoError(t, err)
	got := rcv.wait(t, 2)
	ids := map[string]bool{}
	for _, e := range got {
		ids[e.ID] = true
	}
	assert.True(t, ids["e2"] && ids["e3"], "the missed events arrive after the restart")
}

func TestBus_rejected_events_survive_restart_and_can_be_retried(t *testing.T) {
	eachStore(t, testRejectedSurviveRestart)
}

func testRejectedSurviveRestart(t *testing.T, store func() bus.Config) {
	status := make(chan int, 10)
	status <- http.StatusBadRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case s := <-status:
			w.WriteHeader(s)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	t.Cleanup(srv.Close)

	b1 := startBus(t, store())
	_, err := b1.Integrations().Create(ctx, bus.Integration{ID: "erp",
		Sink: webhook.Config{URL: srv.URL, AllowPrivateNetworks: true}})
	require.NoError(t, err)
	require.NoError(t, b1.Publish(ctx, bus.Event{ID: "bad-1", Name: "order.created"}))
	require.Eventually(t, func() bool {
		r, _ := b1.Integrations().Rejected(ctx, "erp")
		return len(r) == 1
	}, 10*time.Second, time.Millisecond)
	require.NoError(t, b1.Close())

	b2 := startBus(t, store())
	rejected, err := b2.Integrations().Rejected(ctx, "erp")
	require.NoError(t, err)
	require.Len(t, rejected, 1)
	assert.Equal(t, 400, rejected[0].StatusCode)
	require.NoError(t, b2.Integrations().RetryRejected(ctx, "erp", "bad-1"))
	rejected, err = b2.Integrations().Rejected(ctx, "erp")
	require.NoError(t, err)
	assert.Empty(t, rejected, "a delivered retry leaves the store")
}

func startBus(t *testing.T, cfg bus.Config) *bus.Bus {
	t.Helper()
	b, err := bus.New(cfg)
	require.NoError(t, err)
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = b.Run(runCtx); close(done) }()
	<-b.Running()
	t.Cleanup(func() { cancel(); _ = b.Close(); <-done })
	return b
}
