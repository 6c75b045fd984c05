package stomp_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"sync"
	"testing"
	"time"

	gostomp "github.com/go-stomp/stomp/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/stomp"
)

// Tests against the real brokers of scripts/test-servers.sh: RabbitMQ's
// STOMP plugin and ActiveMQ Classic, the engine of Amazon MQ.

func realBrokers(t *testing.T) map[string]func(testing.TB) broker {
	return map[string]func(testing.TB) broker{"rabbitmq": rabbitMQ, "activemq": activeMQ}
}

// readAll reads messages from ch until every id in want arrived, and returns
// the messages by id (the last copy when one came twice).
func readAll(t *testing.T, ch <-chan *gostomp.Message, want map[string]bool) map[string]*gostomp.Message {
	t.Helper()
	got := make(map[string]*gostomp.Message)
	timeout := time.After(60 * time.Second)
	for missing := len(want); missing > 0; {
		select {
		case m, ok := <-ch:
			require.True(t, ok, "subscription closed")
			require.NoError(t, m.Err)
			id := m.Header.Get(stomp.HeaderID)
			if want[id] && got[id] == nil {
				missing--
			}
			got[id] = m
		case <-timeout:
			t.Fatalf("%d of %d events did not arrive", missing, len(want))
		}
	}
	return got
}

// publishAll publishes n events from workers goroutines and returns them by id.
func publishAll(t *testing.T, p *stomp.Publisher, n, workers int) map[string]bool {
	t.Helper()
	ids := make(chan string, n)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				msg := event("order.created", "acme", fmt.Sprintf(`{"n":%d}`, i))
				msg.Metadata.Set("source", "storefront")
				if assert.NoError(t, publishRetrying(context.Background(), p, msg)) {
					ids <- msg.UUID
				}
			}
		}()
	}
	wg.Wait()
	close(ids)
	sent := make(map[string]bool, n)
	for id := range ids {
		sent[id] = true
	}
	require.Len(t, sent, n)
	return sent
}

func TestStompSink_delivers_to_real_brokers(t *testing.T) {
	for name, get := range realBrokers(t) {
		t.Run(name, func(t *testing.T) {
			b := get(t)
			dest := testDest()
			ch := b.subscribe(t, dest)
			cfg := b.config(dest)
			p := newSink(t, cfg, sinks.Env{Concurrency: 8})

			sent := publishAll(t, p, 300, 8)
			got := readAll(t, ch, sent)
			for id, m := range got {
				require.True(t, sent[id], "unexpected event %s", id)
				var env sinks.Envelope
				require.NoError(t, json.Unmarshal(m.Body, &env))
				assert.Equal(t, id, env.ID)
				assert.Equal(t, "order.created", env.Name)
				assert.Equal(t, "acme", env.Tenant)
				assert.Equal(t, "application/json", m.ContentType)
				assert.Equal(t, "order.created", m.Header.Get(stomp.HeaderName))
				assert.Equal(t, "acme", m.Header.Get(stomp.HeaderTenant))
				assert.Equal(t, "storefront", m.Header.Get("source"))
				assert.Equal(t, "true", m.Header.Get("persistent"))
			}
		})
	}
}

func TestStompSink_real_broker_refuses_bad_credentials(t *testing.T) {
	says := map[string]string{"rabbitmq": "Access refused for user", "activemq": "password is invalid"}
	for name, get := range realBrokers(t) {
		t.Run(name, func(t *testing.T) {
			b := get(t)
			cfg := b.config(testDest())
			cfg.Password = "wrong-password"
			cfg.ReconnectWait = sinks.Duration(100 * time.Millisecond)
			cfg.MaxReconnectWait = cfg.ReconnectWait
			p := newSink(t, cfg, sinks.Env{})
			// A busy broker now and then closes the socket before its ERROR
			// frame is read (ActiveMQ did in CI): that attempt is a retryable
			// failure, retried, and the refusal must come on a later one.
			var err error
			class := sinks.ClassRetryable
			for deadline := time.Now().Add(20 * time.Second); class != sinks.ClassPermanent && time.Now().Before(deadline); {
				err = p.Publish("", event("order.created", "", `{}`))
				require.ErrorIs(t, err, stomp.ErrNotConnected)
				if class, _ = sinks.Classify(err); class != sinks.ClassPermanent {
					t.Logf("not refused yet: %v", err)
					time.Sleep(100 * time.Millisecond)
				}
			}
			assert.Equal(t, sinks.ClassPermanent, class, "%v", err)
			assert.NotContains(t, err.Error(), "wrong-password")
			assert.Contains(t, err.Error(), says[name], "the broker's words")
			t.Log(err)
		})
	}
}

func TestStompSink_real_broker_refuses_destination(t *testing.T) {
	t.Run("rabbitmq unknown destination type", func(t *testing.T) {
		b := rabbitMQ(t)
		p := newSink(t, b.config("/bogus/sinkbus-test"), sinks.Env{})
		err := p.Publish("", event("order.created", "", `{}`))
		class, _ := sinks.Classify(err)
		assert.Equal(t, sinks.ClassPermanent, class, "%v", err)
		assert.Contains(t, err.Error(), "Unknown destination")
		t.Log(err)
	})
	t.Run("activemq user without write permission", func(t *testing.T) {
		b := activeMQ(t)
		b.user, b.pass = "sinkbus-reader", "sinkbus-reader-pass" // scripts/servers/activemq.sh
		p := newSink(t, b.config(testDest()), sinks.Env{})
		err := p.Publish("", event("order.created", "", `{}`))
		class, _ := sinks.Classify(err)
		assert.Equal(t, sinks.ClassPermanent, class, "%v", err)
		assert.Contains(t, err.Error(), "not authorized to write")
		t.Log(err)
	})
}

func TestStompSink_real_broker_failover_past_unreachable_address(t *testing.T) {
	for name, get := range realBrokers(t) {
		t.Run(name, func(t *testing.T) {
			b := get(t)
			dest := testDest()
			ch := b.subscribe(t, dest)
			cfg := b.config(dest)
			cfg.Addresses = []string{fmt.Sprintf("failover:(stomp://%s,stomp://%s)", closedAddr(t), b.addr)}
			dialErrs := make(chan error, 100)
			p := newSink(t, cfg, sinks.Env{Concurrency: 4}, stomp.OnDialError(func(_ string, err error) { dialErrs <- err }))

			sent := publishAll(t, p, 100, 4)
			readAll(t, ch, sent)
			require.NotEmpty(t, dialErrs, "the first address was tried")
		})
	}
}

// The broker restarts while events flow; the publishing side retries as the
// bus's retry middleware does. Every event whose Publish returned nil must
// be in the broker afterwards, so it is read after the restart: a receipt
// came only once the event was stored.
func TestStompSink_survives_activemq_restart(t *testing.T) {
	b := activeMQ(t)
	if testing.Short() {
		t.Skip("restarts ActiveMQ (several seconds)")
	}
	script := func(args ...string) error {
		out, err := exec.Command("../../scripts/test-servers.sh", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("test-servers.sh %v: %w\n%s", args, err, out)
		}
		return nil
	}
	t.Cleanup(func() { assert.NoError(t, script("start", "activemq")) }) // whatever happens

	dest := testDest()
	var mu sync.Mutex
	var connects, disconnects int
	cfg := b.config(dest)
	cfg.ReconnectWait = sinks.Duration(200 * time.Millisecond)
	p := newSink(t, cfg, sinks.Env{Concurrency: 4},
		stomp.OnConnect(func(string) { mu.Lock(); connects++; mu.Unlock() }),
		stomp.OnDisconnect(func(string, error) { mu.Lock(); disconnects++; mu.Unlock() }))

	const n = 600
	confirmed := make(map[string]bool, n)
	progress := make(chan struct{}, n)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 4 {
				msg := event("order.created", "", fmt.Sprintf(`{"n":%d}`, i))
				if assert.NoError(t, publishRetrying(ctx, p, msg)) {
					mu.Lock()
					confirmed[msg.UUID] = true
					mu.Unlock()
					progress <- struct{}{}
				}
			}
		}()
	}
	for i := 0; i < 100; i++ { // some events before the restart
		select {
		case <-progress:
		case <-ctx.Done():
			t.Fatal("no events confirmed before the restart")
		}
	}
	// The publishers report through t: they must have stopped before the
	// test may end, also when the restart cannot be made.
	if err := errors.Join(script("stop", "activemq"), script("start", "activemq")); err != nil {
		cancel()
		wg.Wait()
		t.Fatal(err)
	}
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, confirmed, n)
	assert.GreaterOrEqual(t, disconnects, 1, "the restart cut the connections")
	assert.Greater(t, connects, 4, "and they came back")
	t.Logf("%d connects, %d disconnects", connects, disconnects)
	readAll(t, b.subscribe(t, dest), confirmed)
}

// Idle connections must stay up on default heart-beats. ActiveMQ sends its
// heart-beats up to twice the interval apart (it checks on a timer whether
// it wrote anything since the last check); with go-stomp's own read timeout
// of interval + 5 s, every idle connection was cut and redialled each 15 s.
func TestStompSink_idle_connections_survive_default_heart_beats(t *testing.T) {
	if testing.Short() {
		t.Skip("idles for 40 s")
	}
	for name, get := range realBrokers(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := get(t)
			var mu sync.Mutex
			var connects int
			var lost []error
			p := newSink(t, b.config(testDest()), sinks.Env{Concurrency: 2},
				stomp.OnConnect(func(string) { mu.Lock(); connects++; mu.Unlock() }),
				stomp.OnDisconnect(func(_ string, err error) { mu.Lock(); lost = append(lost, err); mu.Unlock() }))
			require.NoError(t, publishRetrying(context.Background(), p, event("order.created", "", `{}`)))

			// Longer than go-stomp's read timeout at the defaults, 2 × (10 s + 5 s),
			// and than twice ActiveMQ's interval.
			time.Sleep(40 * time.Second)

			require.NoError(t, p.Publish("", event("order.created", "", `{}`)))
			mu.Lock()
			defer mu.Unlock()
			assert.Empty(t, lost, "no idle connection was cut")
			assert.Equal(t, 2, connects, "each connection connected once")
		})
	}
}
