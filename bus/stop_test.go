package bus_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/bustest"
	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/webhook"
)

func TestIntegrations_Stop_lets_the_attempt_under_way_finish(t *testing.T) {
	var mu sync.Mutex
	counts := map[string]int{}
	arrived := make(chan string, 10)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var env sinks.Envelope
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &env)
		arrived <- env.ID
		if env.ID == "e1" {
			<-release // the receiver is slow while the integration stops
		}
		mu.Lock()
		counts[env.ID]++
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // runs before srv.Close, which waits for the handler
	next := func() string {
		t.Helper()
		select {
		case id := <-arrived:
			return id
		case <-time.After(10 * time.Second):
			t.Fatal("no request")
			return ""
		}
	}

	tb := bustest.New(t, func(c *bus.Config) { c.Clock = nil; c.StopGrace = time.Minute })
	_, err := tb.Bus.Integrations().Create(ctx, bus.Integration{ID: "erp", Observes: []string{"order.*"},
		Concurrency: 1, Sink: webhook.Config{URL: srv.URL, AllowPrivateNetworks: true}})
	require.NoError(t, err)
	tb.MustPublish(bus.Event{ID: "e1", Name: "order.created"})
	require.Equal(t, "e1", next())

	stopped := make(chan error, 1)
	go func() {
		_, err := tb.Bus.Integrations().Stop(ctx, "erp")
		stopped <- err
	}()
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned (%v) before the attempt under way was answered", err)
	case <-time.After(100 * time.Millisecond):
	}
	unblock()
	require.NoError(t, <-stopped)

	// Started again, the integration goes on after e1: it was acknowledged,
	// so it does not come again ahead of e2 (concurrency 1 keeps the order).
	_, err = tb.Bus.Integrations().Start(ctx, "erp")
	require.NoError(t, err)
	tb.MustPublish(bus.Event{ID: "e2", Name: "order.created"})
	assert.Equal(t, "e2", next())
	// The receiver counts e2 just after it reports its arrival.
	assert.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return counts["e2"] == 1
	}, 10*time.Second, time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, map[string]int{"e1": 1, "e2": 1}, counts)
}
