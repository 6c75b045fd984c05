package bus_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/internal/pgtest"
	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/replay"
	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/webhook"
)

// replayReceiver counts live and replayed webhook deliveries by event id;
// replayed ones take a while, so that a replay is still under way when a
// test acts on it, and reached closes once `at` replayed ones arrived.
type replayReceiver struct {
	*httptest.Server
	mu       sync.Mutex
	live     map[string]int
	replayed map[string]int
	n        int
	at       int
	reached  chan struct{}
}

func newReplayReceiver(t *testing.T, at int) *replayReceiver {
	rr := &replayReceiver{live: map[string]int{}, replayed: map[string]int{}, at: at, reached: make(chan struct{})}
	rr.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var env sinks.Envelope
		if err := json.NewDecoder(req.Body).Decode(&env); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if req.Header.Get("X-Sinkbus-Replayed") != "true" {
			rr.mu.Lock()
			rr.live[env.ID]++
			rr.mu.Unlock()
			w.WriteHeader(http.StatusNoContent)
			return
		}
		time.Sleep(10 * time.Millisecond)
		rr.mu.Lock()
		rr.replayed[env.ID]++
		if rr.n++; rr.n == rr.at {
			close(rr.reached)
		}
		rr.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rr.Close)
	return rr
}

func (rr *replayReceiver) counts() (live, replayedDistinct, replayedTotal int) {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	return len(rr.live), len(rr.replayed), rr.n
}

// replayActions returns the log entries of id's replays with job, oldest
// first, as "action" strings.
func replayActions(t *testing.T, b *bus.Bus, id, job string) []string {
	t.Helper()
	entries, err := b.Integrations().Log(ctx, id)
	require.NoError(t, err)
	var out []string
	for i := len(entries) - 1; i >= 0; i-- {
		if e := entries[i]; strings.HasPrefix(e.Action, "replay_") && strings.HasPrefix(e.Reason, job+":") {
			out = append(out, e.Action)
		}
	}
	return out
}

// On PostgreSQL a replay is the integration's, not the replica's. A change
// of the integration through the replica that does not run it aborts it;
// when the replica running one closes, the replica that takes the
// integration over resumes it where it stopped, and the job asked of that
// other replica ends once the whole range is settled, each event delivered
// again once, give or take the attempts under way at the handover.
func TestPostgres_a_replay_goes_on_when_its_replica_closes(t *testing.T) {
	pool, schema, a, b := twoReplicas(t)
	const events, concurrency = 200, 4
	rr := newReplayReceiver(t, 40)
	_, err := a.Integrations().Create(ctx, bus.Integration{ID: "i", Concurrency: concurrency,
		Sink: webhook.Config{URL: rr.URL, AllowPrivateNetworks: true}})
	require.NoError(t, err)
	for i := range events {
		require.NoError(t, a.Publish(ctx, bus.Event{ID: fmt.Sprintf("e%03d", i), Name: "order.created"}))
	}
	require.Eventually(t, func() bool { live, _, _ := rr.counts(); return live == events },
		10*time.Second, 10*time.Millisecond)
	holder, other := a, b
	require.Eventually(t, func() bool {
		return leaseHolder(t, pool, schema, "i") != ""
	}, 5*time.Second, 10*time.Millisecond)
	if leaseHolder(t, pool, schema, "i") == "b" {
		holder, other = b, a
	}

	// Changed through the replica that does not run it: aborted.
	first, err := other.Integrations().Replay(ctx, "i", replay.Request{})
	require.NoError(t, err)
	require.Eventually(t, func() bool { _, _, n := rr.counts(); return n > 0 }, 10*time.Second, time.Millisecond)
	_, err = other.Integrations().UpdateFunc(ctx, "i", func(in *bus.Integration) error {
		in.Delivery = middleware.Settings{Timeout: 9 * time.Second}
		return nil
	})
	require.NoError(t, err)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	require.ErrorIs(t, first.Wait(wctx), replay.ErrAborted)
	require.Eventually(t, func() bool {
		return slices.Contains(replayActions(t, holder, "i", first.ID), bus.ActionReplayAborted)
	}, 5*time.Second, 10*time.Millisecond, "the replica running it stops it once it applies the change")
	_, _, before := rr.counts()
	time.Sleep(200 * time.Millisecond)
	_, _, after := rr.counts()
	assert.LessOrEqual(t, after-before, concurrency, "the aborted replay delivers nothing more but what was under way")

	// The replica running it closes: the other goes on with it.
	rr.mu.Lock()
	rr.replayed, rr.n, rr.reached = map[string]int{}, 0, make(chan struct{})
	reached := rr.reached
	rr.mu.Unlock()
	job, err := other.Integrations().Replay(ctx, "i", replay.Request{})
	require.NoError(t, err)
	assert.Equal(t, events, job.Matched)
	select {
	case <-reached:
	case <-time.After(20 * time.Second):
		t.Fatal("the replay did not start")
	}
	require.NoError(t, holder.Close())
	wctx, cancel = context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	require.NoError(t, job.Wait(wctx), "the job asked of the replica that took the integration over ends completed")
	_, distinct, total := rr.counts()
	assert.Equal(t, events, distinct, "every event of the range delivered again")
	assert.LessOrEqual(t, total-events, concurrency, "duplicates within the attempts under way at the handover")
	assert.Equal(t, []string{bus.ActionReplayStarted, bus.ActionReplayHandedOver, bus.ActionReplayResumed, bus.ActionReplayCompleted},
		replayActions(t, other, "i", job.ID))
	var running int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM "`+schema+`".replays WHERE state = 'running'`).Scan(&running))
	assert.Zero(t, running)
	var progress int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM "`+schema+`".journal_cursors WHERE grp LIKE '%~replay-%'`).Scan(&progress))
	assert.Zero(t, progress, "the replays' progress went with them")
}

// A replica running a replay is killed (SIGKILL) mid-range: the replica
// that takes the integration over resumes the replay from the progress the
// dead one last saved, not from the start, and the job asked of it ends
// completed once every event of the range was delivered again.
func TestReplicas_a_replay_survives_its_replica_killed(t *testing.T) {
	pgtest.URL(t)
	schema := pgtest.Schema(t)
	log := newDeliveryLog(t)
	log.replayDelay = 25 * time.Millisecond
	createReplicaIntegrations(t, schema, log.URL, 1)
	const events, killAt = 300, 100
	// Of two members the first by name delivers the one integration: "a",
	// the process, until it is killed.
	k := startReplica(t, schema, "a", 0, events)
	<-k.done
	// The hook names the process delivering: "a" in the child, empty in
	// this one.
	replayed := func(replica string) (distinct, total int) {
		seen := map[string]bool{}
		for _, d := range log.snapshot() {
			if d.Replayed && (replica == "*" || d.Replica == replica) {
				seen[d.Event] = true
				total++
			}
		}
		return len(seen), total
	}
	require.Eventually(t, func() bool { return len(log.snapshot()) == events }, 30*time.Second, 10*time.Millisecond)

	p := startBus(t, replicaConfig(schema, "z"))
	job, err := p.Integrations().Replay(ctx, "i0", replay.Request{})
	require.NoError(t, err)
	assert.Equal(t, events, job.Matched)
	require.Eventually(t, func() bool { _, n := replayed("a"); return n >= killAt }, 30*time.Second, time.Millisecond)
	require.NoError(t, k.cmd.Process.Signal(syscall.SIGKILL))
	<-k.ended
	_, byKilled := replayed("a")

	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	require.NoError(t, job.Wait(wctx), "resumed by the replica that took the integration over, and completed")
	distinct, _ := replayed("*")
	assert.Equal(t, events, distinct, "every event of the range delivered again")
	_, bySurvivor := replayed("")
	dups := byKilled + bySurvivor - events
	t.Logf("the killed replica replayed %d, the survivor %d: %d duplicates", byKilled, bySurvivor, dups)
	assert.LessOrEqual(t, dups, byKilled/2, "resumed from the saved progress, not from the start")
	actions := replayActions(t, p, "i0", job.ID)
	assert.Contains(t, actions, bus.ActionReplayResumed)
	assert.Equal(t, bus.ActionReplayCompleted, actions[len(actions)-1])
}
