package bus_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/bustest"
	"github.com/sinkbus/sinkbus/replay"
	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/file"
	"github.com/sinkbus/sinkbus/sinks/webhook"
)

// handlerEvents records what an in-process handler receives.
type handlerEvents struct {
	mu  sync.Mutex
	got []bus.Event
	c   chan struct{}
}

func newHandlerEvents() *handlerEvents { return &handlerEvents{c: make(chan struct{}, 100)} }

func (h *handlerEvents) handle(_ context.Context, e bus.Event) error {
	h.mu.Lock()
	h.got = append(h.got, e)
	h.mu.Unlock()
	h.c <- struct{}{}
	return nil
}

func (h *handlerEvents) wait(t *testing.T, n int) []bus.Event {
	t.Helper()
	for range n {
		select {
		case <-h.c:
		case <-time.After(10 * time.Second):
			t.Fatal("handler not called")
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]bus.Event(nil), h.got...)
}

// replayedByID maps event ids to their Replayed flags, one per delivery.
func replayedByID(events []bus.Event) map[string][]bool {
	out := map[string][]bool{}
	for _, e := range events {
		out[e.ID] = append(out[e.ID], e.Replayed)
	}
	return out
}

func TestReplay_marks_events_replayed_for_handlers_and_sinks_and_live_ones_not(t *testing.T) {
	tb := bustest.New(t)
	h := newHandlerEvents()
	require.NoError(t, tb.Handle("mailer", []string{"order.*"}, h.handle))
	sink := tb.NewSinkIntegration(bus.Integration{ID: "erp", Observes: []string{"order.*"}})

	start := tb.Clock.Now()
	tb.MustPublish(bus.Event{ID: "o-1", Name: "order.created"}, bus.Event{ID: "o-2", Name: "order.fulfilled"})
	tb.Clock.Advance(time.Hour)
	h.wait(t, 2)
	sink.WaitFor(t, 2)

	for _, id := range []string{"mailer", "erp"} {
		replayAndWait(t, tb, id, replay.Request{From: start, To: start.Add(time.Minute)})
	}
	tb.MustPublish(bus.Event{ID: "o-3", Name: "order.created"}) // live again, after the replays
	want := map[string][]bool{"o-1": {false, true}, "o-2": {false, true}, "o-3": {false}}
	for name, got := range map[string][]bus.Event{"handler": h.wait(t, 3), "bustest sink": sink.WaitFor(t, 5)} {
		assert.Equal(t, want, replayedByID(got), "%s: live deliveries first, then the replayed ones", name)
	}
}

func TestReplay_publish_ignores_Replayed(t *testing.T) {
	tb := bustest.New(t)
	sink := tb.Record("order.*")
	tb.MustPublish(bus.Event{ID: "o-1", Name: "order.created", Replayed: true})
	got := sink.WaitFor(t, 1)
	assert.False(t, got[0].Replayed, "only the bus marks a delivery replayed")
}

func TestRetryRejected_marks_the_event_replayed(t *testing.T) {
	tb := bustest.New(t)
	h := newHandlerEvents()
	var failed sync.Once
	require.NoError(t, tb.Handle("mailer", []string{"order.*"}, func(ctx context.Context, e bus.Event) error {
		first := false
		failed.Do(func() { first = true })
		if first {
			return sinks.Permanent(errors.New("template missing"))
		}
		return h.handle(ctx, e)
	}))
	tb.MustPublish(bus.Event{ID: "o-1", Name: "order.created"})
	require.Eventually(t, func() bool {
		rejected, err := tb.Integrations().Rejected(ctx, "mailer")
		require.NoError(t, err)
		return len(rejected) == 1
	}, 10*time.Second, time.Millisecond)

	require.NoError(t, tb.Integrations().RetryRejected(ctx, "mailer", "o-1"))
	got := h.wait(t, 1)
	assert.Equal(t, "o-1", got[0].ID)
	assert.True(t, got[0].Replayed)
}

// webhookBodies records the raw bodies and the replayed header a webhook
// receiver gets.
type webhookBodies struct {
	mu     sync.Mutex
	bodies [][]byte
	header []string
	c      chan struct{}
}

func (w *webhookBodies) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	w.mu.Lock()
	w.bodies = append(w.bodies, body)
	w.header = append(w.header, r.Header.Get("X-Sinkbus-Replayed"))
	w.mu.Unlock()
	rw.WriteHeader(http.StatusNoContent)
	w.c <- struct{}{}
}

func (w *webhookBodies) wait(t *testing.T, n int) ([][]byte, []string) {
	t.Helper()
	for range n {
		select {
		case <-w.c:
		case <-time.After(10 * time.Second):
			t.Fatal("webhook not received")
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([][]byte(nil), w.bodies...), append([]string(nil), w.header...)
}

// envelopeMarks decodes envelopes, which must be valid JSON, and returns
// each one's id and whether it carries "replayed":true, sorted.
func envelopeMarks(t *testing.T, docs [][]byte) []string {
	t.Helper()
	var out []string
	for _, doc := range docs {
		require.True(t, json.Valid(doc), "%s", doc)
		var env sinks.Envelope
		require.NoError(t, json.Unmarshal(doc, &env))
		mark := env.ID
		if env.Replayed {
			mark += " replayed"
		}
		if !env.Replayed {
			assert.NotContains(t, string(doc), `"replayed"`, "live envelopes leave the key out")
		}
		out = append(out, mark)
	}
	sort.Strings(out)
	return out
}

// The mark reaches the destinations that see no metadata of the bus: the
// envelope a webhook posts and a file export writes says "replayed":true.
func TestReplay_envelope_of_webhook_and_file_says_replayed(t *testing.T) {
	tb := bustest.New(t)
	rcv := &webhookBodies{c: make(chan struct{}, 100)}
	srv := httptest.NewServer(rcv)
	t.Cleanup(srv.Close)
	tb.Create(bus.Integration{ID: "erp", Observes: []string{"order.*"},
		Sink: webhook.Config{URL: srv.URL, SecretKey: secret, AllowPrivateNetworks: true}})
	exports := t.TempDir()
	finished := make(chan string, 10)
	tb.Create(bus.Integration{ID: "export", Observes: []string{"order.*"}, UnconfinedPaths: true,
		Sink: file.Config{Dir: exports, OnFinalized: func(path string) { finished <- path }}})

	start := tb.Clock.Now()
	tb.MustPublish(bus.Event{ID: "o-1", Name: "order.created", Tenant: "acme", Payload: json.RawMessage(`{"total":250}`)})
	rcv.wait(t, 1)
	waitLag(t, tb, "export")
	for _, id := range []string{"erp", "export"} {
		replayAndWait(t, tb, id, replay.Request{From: start})
	}

	bodies, headers := rcv.wait(t, 1)
	assert.Equal(t, []string{"o-1", "o-1 replayed"}, envelopeMarks(t, bodies))
	sort.Strings(headers)
	assert.Equal(t, []string{"", "true"}, headers, "the header agrees with the envelope")

	_, err := tb.Integrations().Stop(ctx, "export") // finishes the open file
	require.NoError(t, err)
	var lines [][]byte
	for {
		var path string
		select {
		case path = <-finished:
		case <-time.After(10 * time.Second):
			t.Fatal("export file not finished")
		}
		f, err := os.Open(path)
		require.NoError(t, err)
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			lines = append(lines, append([]byte(nil), sc.Bytes()...))
		}
		require.NoError(t, sc.Err())
		require.NoError(t, f.Close())
		if len(lines) >= 2 {
			break
		}
	}
	assert.Equal(t, []string{"o-1", "o-1 replayed"}, envelopeMarks(t, lines))
}
