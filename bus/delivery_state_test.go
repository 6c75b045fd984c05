package bus_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/replay"
	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/webhook"
)

// The scenario of a slow event: the first event published is answered 500
// (a receiver refusing one payload) while the 500 after it are accepted.
// The successes keep the circuit closed, so the failing event stays in its
// retry policy for hours; the cursor's watermark stays at it.
const (
	slowEventID  = "evt-slow"
	slowFollowed = 500
	slowOrders   = 10 // with an order key, events spread over this many orders
)

// slowReceiver is a webhook endpoint that answers 500 to the slow event
// until healed, 204 to the others, and counts what it accepted.
type slowReceiver struct {
	*httptest.Server
	mu       sync.Mutex
	healed   bool
	accepted map[string]int // event id -> times accepted
	refused  int
}

func newSlowReceiver(t *testing.T) *slowReceiver {
	r := &slowReceiver{accepted: make(map[string]int)}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		var env sinks.Envelope
		if err == nil {
			err = json.Unmarshal(body, &env)
		}
		if err != nil {
			http.Error(w, "not a delivery", http.StatusInternalServerError)
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		if env.ID == slowEventID && !r.healed {
			r.refused++
			http.Error(w, "cannot take this one", http.StatusInternalServerError)
			return
		}
		r.accepted[env.ID]++
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *slowReceiver) heal() {
	r.mu.Lock()
	r.healed = true
	r.mu.Unlock()
}

// counts returns how many distinct events were accepted, how many times
// in all, and how many times the slow one was refused.
func (r *slowReceiver) counts() (distinct, receipts, refused int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range r.accepted {
		receipts += k
	}
	return len(r.accepted), receipts, r.refused
}

// waitAccepted waits until n distinct events were accepted.
func (r *slowReceiver) waitAccepted(t *testing.T, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		distinct, _, _ := r.counts()
		return distinct >= n
	}, 30*time.Second, time.Millisecond, "events accepted")
}

// slowIntegration is the integration of the scenario: concurrency 4, and a
// first retry an hour away, so the slow event is in flight (waiting in its
// retry policy) whenever the test stops or kills the bus.
func slowIntegration(url string, ordered bool) bus.Integration {
	in := bus.Integration{ID: "erp", Concurrency: 4,
		Sink: webhook.Config{URL: url, AllowPrivateNetworks: true}}
	in.Delivery.Retry.InitialInterval = time.Hour
	in.Delivery.Retry.MaxInterval = time.Hour
	if ordered {
		in.OrderKey = "payload.order"
	}
	return in
}

// slowEvents are the scenario's events: the slow one in order o0, then the
// others over every order.
func slowEvents() []bus.Event {
	events := []bus.Event{{ID: slowEventID, Name: "order.updated", Payload: json.RawMessage(`{"order":"o0"}`)}}
	for i := range slowFollowed {
		events = append(events, bus.Event{ID: fmt.Sprintf("evt-%03d", i), Name: "order.updated",
			Payload: json.RawMessage(fmt.Sprintf(`{"order":"o%d"}`, i%slowOrders))})
	}
	return events
}

// slowAccepted is how many events are accepted while the slow one fails:
// all the others, but with an order key not those of its order, which wait
// behind it.
func slowAccepted(ordered bool) int {
	if ordered {
		return slowFollowed - slowFollowed/slowOrders
	}
	return slowFollowed
}

// A stop, an update, a close or a crash while one event keeps failing
// re-sends none of the events delivered after it: the cursor saves what was
// acknowledged above its watermark. The lag counts only what is undelivered.
func TestDeliveryState_a_failing_event_pins_nothing(t *testing.T) {
	restarts := map[string]func(t *testing.T, b *bus.Bus, dir string) *bus.Bus{
		"stop_start": func(t *testing.T, b *bus.Bus, _ string) *bus.Bus {
			_, err := b.Integrations().Stop(ctx, "erp")
			require.NoError(t, err)
			_, err = b.Integrations().Start(ctx, "erp")
			require.NoError(t, err)
			return b
		},
		"update": func(t *testing.T, b *bus.Bus, _ string) *bus.Bus {
			_, err := b.Integrations().UpdateFunc(ctx, "erp", func(in *bus.Integration) error {
				in.Name = "ERP"
				return nil
			})
			require.NoError(t, err)
			return b
		},
		"close_new": func(t *testing.T, b *bus.Bus, dir string) *bus.Bus {
			require.NoError(t, b.Close())
			return startBus(t, bus.Config{DataDir: dir, AllowPrivateNetworks: true})
		},
	}
	for name, restart := range restarts {
		for _, ordered := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/ordered=%v", name, ordered), func(t *testing.T) {
				t.Parallel()
				rcv := newSlowReceiver(t)
				cfg := bus.Config{AllowPrivateNetworks: true}
				dir := ""
				if name == "close_new" {
					dir = t.TempDir()
					cfg.DataDir = dir
				}
				b := startBus(t, cfg)
				_, err := b.Integrations().Create(ctx, slowIntegration(rcv.URL, ordered))
				require.NoError(t, err)
				require.NoError(t, b.Publish(ctx, slowEvents()...))

				want := slowAccepted(ordered)
				rcv.waitAccepted(t, want)
				waiting := slowFollowed + 1 - want
				require.Eventually(t, func() bool {
					lag, err := b.Integrations().Lag(ctx, "erp")
					return err == nil && lag == uint64(waiting)
				}, 10*time.Second, time.Millisecond, "lag: the slow event and those waiting behind it")

				rcv.heal()
				b = restart(t, b, dir)
				rcv.waitAccepted(t, slowFollowed+1)
				settled(t, b, "erp")

				distinct, receipts, refused := rcv.counts()
				assert.Equal(t, slowFollowed+1, distinct)
				assert.Zero(t, receipts-distinct, "events re-sent after the %s", name)
				assert.Equal(t, 1, refused, "the slow event was refused once, then accepted after the %s", name)
			})
		}
	}
}

// deliveryStateChildEnv makes TestDeliveryStateChild a process running the
// slow-event scenario's bus in the DataDir it names; "_URL" is the
// receiver, "_ORDERED" the order key, "_PUBLISH" whether to publish the
// events. It prints "ready" once it runs and publishes; when its stdin ends
// it waits until the integration has settled everything, prints
// "settled", and closes the bus.
const deliveryStateChildEnv = "SINKBUS_DELIVERY_STATE_DIR"

// TestDeliveryStateChild is not a test: TestDeliveryState_SIGKILL re-executes
// the test binary to run it.
func TestDeliveryStateChild(t *testing.T) {
	dir := os.Getenv(deliveryStateChildEnv)
	if dir == "" {
		t.Skip("child process of TestDeliveryState_SIGKILL")
	}
	fail := childFail("delivery state child")
	b, err := bus.New(bus.Config{DataDir: dir, AllowPrivateNetworks: true, CloseTimeout: 5 * time.Second})
	if err != nil {
		fail("open", err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- b.Run(runCtx) }()
	<-b.Running()
	if os.Getenv(deliveryStateChildEnv+"_PUBLISH") != "" {
		ordered := os.Getenv(deliveryStateChildEnv+"_ORDERED") != ""
		if _, err := b.Integrations().Create(ctx, slowIntegration(os.Getenv(deliveryStateChildEnv+"_URL"), ordered)); err != nil {
			fail("create", err)
		}
		if err := b.Publish(ctx, slowEvents()...); err != nil {
			fail("publish", err)
		}
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(time.Millisecond) {
		lag, err := b.Integrations().Lag(ctx, "erp")
		if err != nil {
			fail("lag", err)
		}
		if lag == 0 {
			break
		}
		if time.Now().After(deadline) {
			fail("settle", fmt.Errorf("lag %d", lag))
		}
	}
	fmt.Println("settled")
	cancel()
	if err := b.Close(); err != nil {
		fail("close", err)
	}
	<-ran
}

// savedCursor reads the cursors file of the journal in dir, as it is, while
// another process holds the journal, and returns group's cursor.
func savedCursor(t *testing.T, dir, group string) replay.Cursor {
	data, err := os.ReadFile(filepath.Join(dir, "journal", "cursors.json"))
	if os.IsNotExist(err) {
		return replay.Cursor{}
	}
	require.NoError(t, err)
	var entries []struct {
		Group  string      `json:"group"`
		Offset uint64      `json:"offset"`
		Acked  [][2]uint64 `json:"acked"`
	}
	require.NoError(t, json.Unmarshal(data, &entries))
	for _, e := range entries {
		if e.Group != group {
			continue
		}
		c := replay.Cursor{Next: e.Offset}
		for _, r := range e.Acked {
			c.Acked = append(c.Acked, replay.Range{From: r[0], To: r[1]})
		}
		return c
	}
	return replay.Cursor{}
}

// savedAcknowledged returns how many offsets group's saved cursor has
// acknowledged, below its watermark and above it.
func savedAcknowledged(t *testing.T, dir, group string) uint64 {
	c := savedCursor(t, dir, group)
	if c.Next == 0 {
		return 0
	}
	return c.Next - 1 + c.AckedAbove() // offsets start at 1
}

// A SIGKILL while the slow event fails, once the cursor saved every
// acknowledgement, re-sends nothing that was delivered: the next process
// sends the slow event (and with an order key those waiting behind it)
// and nothing else.
func TestDeliveryState_SIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	for _, ordered := range []bool{false, true} {
		t.Run(fmt.Sprintf("ordered=%v", ordered), func(t *testing.T) {
			rcv := newSlowReceiver(t)
			dir := t.TempDir()
			env := []string{deliveryStateChildEnv + "=" + dir, deliveryStateChildEnv + "_URL=" + rcv.URL}
			if ordered {
				env = append(env, deliveryStateChildEnv+"_ORDERED=1")
			}
			first := startChild(t, "TestDeliveryStateChild", append(env, deliveryStateChildEnv+"_PUBLISH=1")...)
			first.waitLine(t, "ready")
			want := slowAccepted(ordered)
			rcv.waitAccepted(t, want)
			// Saved within the flush interval: no timing is asserted, the
			// file is read until it has them.
			require.Eventually(t, func() bool { return savedAcknowledged(t, dir, "erp") == uint64(want) },
				10*time.Second, time.Millisecond, "the saved cursor covers every accepted event")
			require.NoError(t, first.cmd.Process.Signal(syscall.SIGKILL))
			require.ErrorContains(t, first.wait(t, func(string) {}), "signal: killed")

			rcv.heal()
			second := startChild(t, "TestDeliveryStateChild", env...)
			second.waitLine(t, "ready")
			rcv.waitAccepted(t, slowFollowed+1)
			require.NoError(t, second.stdin.Close())
			second.waitLine(t, "settled")
			require.NoError(t, second.wait(t, func(string) {}), "%s", &second.stderr)

			distinct, receipts, refused := rcv.counts()
			assert.Equal(t, slowFollowed+1, distinct)
			assert.Zero(t, receipts-distinct, "events re-sent after the SIGKILL")
			assert.Equal(t, 1, refused)
		})
	}
}

// A bound in bytes holds for what waits behind an order key whose event
// keeps failing: reading pauses, and the integration log says so; once
// the key moves everything is delivered, once.
func TestDeliveryState_waiting_behind_a_failing_key_is_bounded_and_logged(t *testing.T) {
	rcv := newSlowReceiver(t)
	b := startBus(t, bus.Config{AllowPrivateNetworks: true, MaxWaitingBytes: 16 << 10})
	in := slowIntegration(rcv.URL, true)
	in.OrderKey = "tenant"
	in.Delivery.Retry.InitialInterval = 100 * time.Millisecond // retried, in the same reader, once healed
	_, err := b.Integrations().Create(ctx, in)
	require.NoError(t, err)
	events := slowEvents()
	big := `"` + strings.Repeat("x", 2<<10) + `"`
	for i := range events {
		events[i].Tenant = "acme"
		events[i].Payload = json.RawMessage(`{"pad":` + big + `}`)
	}
	require.NoError(t, b.Publish(ctx, events...))
	require.Eventually(t, func() bool {
		return len(logReasons(t, b, "erp", middleware.ActionReadingPaused)) == 1
	}, 10*time.Second, time.Millisecond, "the log says reading paused")

	rcv.heal()
	rcv.waitAccepted(t, slowFollowed+1)
	settled(t, b, "erp")
	distinct, receipts, _ := rcv.counts()
	assert.Equal(t, distinct, receipts, "each event once")
	assert.NotEmpty(t, logReasons(t, b, "erp", middleware.ActionReadingResumed))
}
