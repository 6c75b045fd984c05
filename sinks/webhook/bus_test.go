package webhook_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/bustest"
	"github.com/sinkbus/sinkbus/bus/formats"
	"github.com/sinkbus/sinkbus/field"
	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/replay"
	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/webhook"
)

// The webhook sink inside the bus: what the delivery chain and the
// integrations manager do with it.

// attempts is a bus.Observer passing every delivery attempt on.
type attempts struct {
	bus.NopObserver
	c chan middleware.Attempt
}

func (a *attempts) Attempted(_ string, at middleware.Attempt) { a.c <- at }

func (a *attempts) next(t *testing.T) middleware.Attempt {
	t.Helper()
	select {
	case at := <-a.c:
		return at
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery attempt")
		return middleware.Attempt{}
	}
}

func newObservedBus(t *testing.T) (*bustest.Bus, *attempts) {
	obs := &attempts{c: make(chan middleware.Attempt, 100)}
	return bustest.New(t, func(c *bus.Config) { c.Observer = obs }), obs
}

// slowReceiver answers 204 after wait.
func slowReceiver(t *testing.T, wait time.Duration) *receiver {
	t.Helper()
	return newReceiverWith(t, http.StatusNoContent, func(_ *receiver, next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(wait)
			next.ServeHTTP(w, r)
		})
	})
}

func TestWebhookSink_in_the_bus_the_delivery_timeout_overrides_the_sinks(t *testing.T) {
	tb, obs := newObservedBus(t)
	// The receiver takes 50 times the sink's own timeout; the integration's
	// delivery timeout allows it.
	rc := slowReceiver(t, 50*time.Millisecond)
	tb.Create(bus.Integration{
		ID: "erp", Observes: []string{"order.*"},
		Sink:     webhook.Config{URL: rc.URL, Timeout: sinks.Duration(time.Millisecond), AllowPrivateNetworks: true},
		Delivery: middleware.Settings{Timeout: time.Minute},
	})

	tb.MustPublish(bus.Event{ID: "e-1", Name: "order.created", Payload: json.RawMessage(`{}`)})

	at := obs.next(t)
	require.NoError(t, at.Err)
	assert.Equal(t, 1, at.Number)
	assert.Equal(t, "e-1", rc.next(t).Header.Get("webhook-id"))
}

func TestWebhookSink_in_the_bus_the_sinks_timeout_is_the_default(t *testing.T) {
	tb, obs := newObservedBus(t)
	srv, _, _ := blockingReceiver(t)
	tb.Create(bus.Integration{
		ID: "erp", Observes: []string{"order.*"},
		Sink: webhook.Config{URL: srv.URL, Timeout: sinks.Duration(20 * time.Millisecond), AllowPrivateNetworks: true},
	})

	tb.MustPublish(bus.Event{ID: "e-1", Name: "order.created", Payload: json.RawMessage(`{}`)})

	at := obs.next(t)
	assert.Equal(t, sinks.ClassRetryable, at.Class)
	assert.True(t, sinks.IsTimeout(at.Err), "%v", at.Err)
	assert.Contains(t, at.Err.Error(), "attempt timed out after 20ms")
}

func TestWebhookSink_in_the_bus_masked_url_sent_back_keeps_the_stored_one(t *testing.T) {
	tb, obs := newObservedBus(t)
	rc := newReceiver(t, http.StatusNoContent)
	const token = "s3cr3t-t0ken-AbCd"
	tb.Create(bus.Integration{
		ID: "erp", Observes: []string{"order.*"},
		Sink: webhook.Config{URL: rc.URL + "/in?token=" + token + "&tenant=acme", AllowPrivateNetworks: true},
	})
	ctx := context.Background()

	got, err := tb.Integrations().Get(ctx, "erp")
	require.NoError(t, err)
	shown := got.Sink.(webhook.Config).URL
	assert.Equal(t, rc.URL+"/in?token=****AbCd&tenant=****", shown)

	// Sent back as shown, from Go and as JSON: the stored URL stays.
	got.Observes = []string{"order.created"}
	_, err = tb.Integrations().Update(ctx, "erp", got)
	require.NoError(t, err)
	body, err := json.Marshal(got)
	require.NoError(t, err)
	require.NotContains(t, string(body), token)
	_, _, err = formats.Update(ctx, tb.Integrations(), "erp", body)
	require.NoError(t, err)

	tb.MustPublish(bus.Event{ID: "e-1", Name: "order.created", Payload: json.RawMessage(`{}`)})
	require.NoError(t, obs.next(t).Err)
	assert.Equal(t, "token="+token+"&tenant=acme", rc.next(t).RawQuery)

	// Edited around a masked value, it would deliver "****AbCd": refused.
	edited := got
	cfg := got.Sink.(webhook.Config)
	cfg.URL = strings.Replace(shown, "/in?", "/v2?", 1)
	edited.Sink = cfg
	_, err = tb.Integrations().Update(ctx, "erp", edited)
	var fe *field.Error
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, "configuration.url", fe.Field)
	assert.NotContains(t, err.Error(), token)
}

func TestWebhookSink_in_the_bus_replays_say_so(t *testing.T) {
	tb, obs := newObservedBus(t)
	rc := newReceiver(t, http.StatusNoContent)
	tb.Create(bus.Integration{
		ID: "erp", Observes: []string{"order.*"},
		Sink: webhook.Config{URL: rc.URL, SecretKey: secret, AllowPrivateNetworks: true},
	})
	tb.MustPublish(bus.Event{ID: "e-1", Name: "order.created", Payload: json.RawMessage(`{}`)})
	require.NoError(t, obs.next(t).Err)
	live := rc.next(t)
	assert.Empty(t, live.Header.Values("X-Sinkbus-Replayed"))

	job, err := tb.Integrations().Replay(context.Background(), "erp", replay.Request{})
	require.NoError(t, err)
	require.Equal(t, 1, job.Matched)
	<-job.Done

	replayed := rc.next(t)
	assert.Equal(t, "true", replayed.Header.Get("X-Sinkbus-Replayed"))
	assert.Equal(t, "e-1", replayed.Header.Get("webhook-id"), "the same event id, for the receiver to dedupe")
	var liveEnv, replayedEnv sinks.Envelope
	require.NoError(t, json.Unmarshal(live.Body, &liveEnv))
	require.NoError(t, json.Unmarshal(replayed.Body, &replayedEnv))
	assert.False(t, liveEnv.Replayed)
	assert.True(t, replayedEnv.Replayed, "the body says so too")
	replayedEnv.Replayed = false
	assert.Equal(t, liveEnv, replayedEnv, "otherwise the body does not change")
	assert.NoError(t, webhook.Verify([]string{secret}, replayed.Header, replayed.Body, tb.Clock.Now(), 0))
}

func TestWebhookSink_in_the_bus_retried_rejected_events_say_so(t *testing.T) {
	tb, obs := newObservedBus(t)
	// 400 the first time, 204 after.
	var refused atomic.Bool
	rc := newReceiverWith(t, http.StatusNoContent, func(rc *receiver, next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if refused.CompareAndSwap(false, true) {
				rc.requests <- request{Header: r.Header.Clone()}
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	tb.Create(bus.Integration{
		ID: "erp", Observes: []string{"order.*"},
		Sink: webhook.Config{URL: rc.URL, AllowPrivateNetworks: true},
	})
	tb.MustPublish(bus.Event{ID: "e-1", Name: "order.created", Payload: json.RawMessage(`{}`)})
	assert.Equal(t, sinks.ClassPermanent, obs.next(t).Class)
	assert.Empty(t, rc.next(t).Header.Values("X-Sinkbus-Replayed"))
	require.Eventually(t, func() bool {
		rejected, err := tb.Integrations().Rejected(context.Background(), "erp")
		return err == nil && len(rejected) == 1
	}, 10*time.Second, time.Millisecond)

	require.NoError(t, tb.Integrations().RetryRejected(context.Background(), "erp", "e-1"))

	require.NoError(t, obs.next(t).Err)
	assert.Equal(t, "true", rc.next(t).Header.Get("X-Sinkbus-Replayed"))
}
