package bus

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"strings"

	"github.com/sinkbus/sinkbus/middleware"
)

// IntegrationState is what an integration is doing, as Health reports it.
type IntegrationState string

const (
	// StateRunning: the integration delivers.
	StateRunning IntegrationState = "running"
	// StatePaused: the integration runs, but its circuit breaker is open
	// (or half-open, a probe under way): events wait in the journal.
	StatePaused IntegrationState = "paused"
	// StateStopped: stopped by Stop, or a temporary integration completed.
	StateStopped IntegrationState = "stopped"
	// StateStarting: to run, once Run has started the bus.
	StateStarting IntegrationState = "starting"
	// StateFailed: to run, but its sink could not start when Run started
	// it (the bus's log says why); Start tries again.
	StateFailed IntegrationState = "failed"
	// StateElsewhere: to run, delivered by another replica (Config.Postgres:
	// this one does not hold its lease).
	StateElsewhere IntegrationState = "elsewhere"
)

// Health is the state of a bus for liveness and readiness probes.
type Health struct {
	// Live is true until Run returns or Close is called: a bus that is
	// not yet running is live.
	Live bool `json:"live"`
	// Ready is true while Run delivers (it has started the integrations)
	// and the journal takes appends, so that Publish can succeed. It does
	// not depend on any destination: one that is down pauses its own
	// integration, and the events wait in the journal.
	Ready bool `json:"ready"`
	// Running is true while Run delivers.
	Running bool `json:"running"`
	// Journal is whether the journal takes appends.
	Journal JournalHealth `json:"journal"`
	// Integrations are every integration's state, by id.
	Integrations []IntegrationHealth `json:"integrations"`
}

// JournalHealth says whether the journal takes appends.
type JournalHealth struct {
	Appendable bool `json:"appendable"`
	// Error is why it does not ("" when it does).
	Error string `json:"error,omitempty"`
}

// IntegrationHealth is one integration's state.
type IntegrationHealth struct {
	// ID is the integration's ref (Integration.Ref): "acme/erp-sync" for
	// tenant acme's.
	ID    string           `json:"id"`
	Type  string           `json:"integration_type"`
	State IntegrationState `json:"state"`
	// Circuit is its breaker's state: closed, open or half-open.
	Circuit string `json:"circuit"`
	// Lag is how many journal events it has not settled yet.
	Lag uint64 `json:"lag"`
}

// Health reports whether the bus is live and ready, and the state of each
// integration. It is cheap enough for a probe every few seconds: it reads
// state the bus keeps, and asks the journal's storage whether it would
// take an append (replay.AppendChecker), without appending.
func (b *Bus) Health(ctx context.Context) Health {
	b.mu.Lock()
	h := Health{
		Live:    !b.closed && !b.runEnded,
		Running: b.routing && !b.closed && isClosed(b.running),
	}
	type row struct {
		r     *runner
		in    Integration
		chain *middleware.Chain
		live  bool
	}
	rows := make([]row, 0, len(b.runners))
	for _, r := range b.runners {
		if r.ready {
			rows = append(rows, row{r, r.in, r.chain, r.live != nil})
		}
	}
	b.mu.Unlock()

	h.Journal.Appendable = true
	if err := b.journal.CheckAppend(Topic); err != nil {
		h.Journal = JournalHealth{Error: err.Error()}
	}
	h.Ready = h.Live && h.Running && h.Journal.Appendable

	sort.Slice(rows, func(i, j int) bool { return rows[i].in.Ref() < rows[j].in.Ref() })
	h.Integrations = make([]IntegrationHealth, 0, len(rows))
	for _, w := range rows {
		if ctx.Err() != nil {
			break
		}
		circuit := w.chain.Breaker().State().State
		h.Integrations = append(h.Integrations, IntegrationHealth{ID: w.in.Ref(), Type: w.in.Type(),
			State: b.stateOf(w.in, w.live, h.Running, circuit), Circuit: circuit, Lag: b.journal.Lag(Topic, w.in.Ref())})
	}
	return h
}

// stateOf is what in is doing: live when its delivery runs, running when
// the bus's Run delivers, circuit its breaker's state.
func (b *Bus) stateOf(in Integration, live, running bool, circuit string) IntegrationState {
	switch {
	case in.Status == Stopped:
		return StateStopped
	case !live && b.pg != nil && !b.pg.holds(in.Ref()):
		return StateElsewhere
	case !live && running:
		return StateFailed
	case !live:
		return StateStarting
	case circuit != middleware.StateClosed:
		return StatePaused
	}
	return StateRunning
}

// State returns what integration id is doing, as Health reports it:
// running, paused by its open circuit, stopped, starting, failed, or (on
// PostgreSQL) delivered by another replica.
func (m *Integrations) State(ctx context.Context, id string) (IntegrationState, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	r, _, err := m.lookup(id)
	if err != nil {
		return "", err
	}
	b := m.b
	b.mu.Lock()
	in, chain, live := r.in, r.chain, r.live != nil
	running := b.routing && !b.closed && isClosed(b.running)
	b.mu.Unlock()
	return b.stateOf(in, live, running, chain.Breaker().State().State), nil
}

// HealthHandler serves Health as JSON for Kubernetes-style probes: a path
// ending in /live or /livez answers liveness (200 while Live, else 503),
// any other path readiness (200 while Ready, else 503, with the whole
// report). Mount it once for both, say at /healthz/, or at /livez and
// /readyz. It answers GET and HEAD only, and shows integration refs
// (every tenant's), types and states, never configurations: mount it
// where probes reach it, not where tenants do.
func (b *Bus) HealthHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := b.Health(r.Context())
		ok := h.Ready
		var body any = h
		if p := strings.TrimSuffix(r.URL.Path, "/"); strings.HasSuffix(p, "/live") || strings.HasSuffix(p, "/livez") {
			ok, body = h.Live, struct {
				Live bool `json:"live"`
			}{h.Live}
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		if r.Method == http.MethodGet {
			_ = json.NewEncoder(w).Encode(body)
		}
	})
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
