package bus_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/internal/pgtest"
	"github.com/sinkbus/sinkbus/sinks/webhook"
)

// PostgreSQL restarted under load, on a server of the test's own: Publish
// fails while it is down, every event whose Publish returned nil is
// delivered, delivery resumes by itself once the server is back, and the
// log says both.
func TestPostgres_restart_under_load_loses_nothing_acknowledged(t *testing.T) {
	srv := pgtest.NewInstance(t)
	pool, err := pgxpool.New(context.Background(), srv.URL)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	var logs syncBuffer
	cfg := pgConfig(pool, "sinkbus")
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	b := startBus(t, cfg)
	h := newHookReceiver(t)
	_, err = b.Integrations().Create(ctx, bus.Integration{ID: "erp",
		Sink: webhook.Config{URL: h.URL + "/erp", AllowPrivateNetworks: true}})
	require.NoError(t, err)

	var mu sync.Mutex
	var acked []string
	failed := 0
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			id := fmt.Sprintf("e%d", n)
			pctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			err := b.Publish(pctx, bus.Event{ID: id, Name: "order.created"})
			cancel()
			mu.Lock()
			if err == nil {
				acked = append(acked, id)
			} else {
				failed++
			}
			mu.Unlock()
			time.Sleep(2 * time.Millisecond)
		}
	}()
	count := func() (int, int) {
		mu.Lock()
		defer mu.Unlock()
		return len(acked), failed
	}
	require.Eventually(t, func() bool { return h.distinct("/erp") > 50 }, 20*time.Second, 10*time.Millisecond)
	srv.Stop()
	time.Sleep(3 * time.Second) // past half the lease: deliveries stop
	_, failedDown := count()
	srv.Start()
	ackedBefore, _ := count()
	require.Eventually(t, func() bool { n, _ := count(); return n > ackedBefore+100 }, 30*time.Second, 10*time.Millisecond,
		"publishing works again")
	close(stop)
	<-done
	assert.Positive(t, failedDown, "Publish fails while the server is down")

	mu.Lock()
	want := append([]string(nil), acked...)
	mu.Unlock()
	require.Eventually(t, func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, id := range want {
			if h.got["/erp"][id] == 0 {
				return false
			}
		}
		return true
	}, 60*time.Second, 50*time.Millisecond, "every acknowledged event is delivered")
	out := logs.String()
	assert.Contains(t, out, "Cannot reach PostgreSQL to renew the leases")
	assert.Contains(t, out, "PostgreSQL reachable again")
}
