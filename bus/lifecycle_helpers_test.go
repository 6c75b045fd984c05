package bus_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/bustest"
	"github.com/sinkbus/sinkbus/field"
	"github.com/sinkbus/sinkbus/internal/pgtest"
	"github.com/sinkbus/sinkbus/sinks"
	_ "github.com/sinkbus/sinkbus/sinks/all" // integrations of every built-in type come as JSON
)

// fieldsOf lists the fields an error names, in order.
func fieldsOf(err error) []string {
	var out []string
	for _, e := range field.Errors(err) {
		var fe *field.Error
		if errors.As(e, &fe) && fe.Field != "" {
			out = append(out, fe.Field)
		}
	}
	return out
}

// ids lists the ids of events.
func eventIDs(events []bus.Event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.ID
	}
	return out
}

// sortedIDs lists the ids of events, sorted.
func sortedIDs(events []bus.Event) []string {
	out := eventIDs(events)
	sort.Strings(out)
	return out
}

// settled waits until integration id has settled every journal event.
func settled(t *testing.T, b *bus.Bus, id string) {
	t.Helper()
	require.Eventually(t, func() bool {
		lag, err := b.Integrations().Lag(ctx, id)
		return err == nil && lag == 0
	}, 10*time.Second, time.Millisecond)
}

// within fails the test unless fn returns within 10 s of real time: for
// calls that must not wait for something the test holds.
func within(t *testing.T, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not return", what)
	}
}

// testSink is a sink type for lifecycle tests: building it may fail, its
// Close may block until released, and it records how it was built and
// purged. Safe for concurrent use.
type testSink struct {
	name      string
	newErr    error         // NewPublisher fails with it
	closeGate chan struct{} // Close waits for it to close, when not nil
	closing   chan string   // told the name of each sink that begins to close, when not nil
	purgeErr  error

	mu      sync.Mutex
	envs    []sinks.Env
	purged  []sinks.Env
	open    int // publishers built and not closed
	atPurge int // open when Purge was called
	events  []string
}

const testSinkType = "lifecycle"

func (s *testSink) Type() string         { return testSinkType }
func (s *testSink) Validate() error      { return nil }
func (s *testSink) Masked() sinks.Config { return s }
func (s *testSink) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{"name": s.name})
}

func (s *testSink) NewPublisher(env sinks.Env) (message.Publisher, error) {
	if s.newErr != nil {
		return nil, s.newErr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.envs = append(s.envs, env)
	s.open++
	return &testPublisher{s: s}, nil
}

func (s *testSink) Purge(env sinks.Env) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.purged = append(s.purged, env)
	s.atPurge = s.open
	return s.purgeErr
}

func (s *testSink) delivered() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.events...)
}

type testPublisher struct {
	s    *testSink
	once sync.Once
}

func (p *testPublisher) Publish(_ string, msgs ...*message.Message) error {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	for _, m := range msgs {
		p.s.events = append(p.s.events, m.UUID)
	}
	return nil
}

func (p *testPublisher) Close() error {
	p.once.Do(func() {
		if p.s.closing != nil {
			p.s.closing <- p.s.name
		}
		if p.s.closeGate != nil {
			<-p.s.closeGate
		}
		p.s.mu.Lock()
		p.s.open--
		p.s.mu.Unlock()
	})
	return nil
}

// lifecycleRegistry is bustest's registry with testSink's type.
func lifecycleRegistry(t *testing.T) *sinks.Registry {
	reg := bustest.Registry()
	require.NoError(t, reg.Register(sinks.Type{Name: testSinkType, Decode: func(json.RawMessage) (sinks.Config, error) {
		return &testSink{}, nil
	}}))
	return reg
}

// lifecycleBus is a test bus that knows testSink's type too.
//
// With lifecycleOnPostgresEnv set (TestLifecycle_holds_on_postgres sets it
// in a process of its own), the bus keeps everything in a schema of its own
// on PostgreSQL, as a replica does: the lifecycle holds there too.
func lifecycleBus(t *testing.T, opts ...func(*bus.Config)) *bustest.Bus {
	reg := lifecycleRegistry(t)
	first := []func(*bus.Config){func(c *bus.Config) { c.Sinks = reg }}
	if lifecycleOnPostgres() {
		pool, schema := pgtest.Pool(t), pgtest.Schema(t)
		first = append(first, func(c *bus.Config) {
			c.Postgres = &bus.Postgres{Pool: pool, Schema: schema, LeaseTTL: 2 * time.Second}
		})
	}
	return bustest.New(t, append(first, opts...)...)
}

// lifecycleOnPostgresEnv runs the tests that make their bus with
// lifecycleBus on PostgreSQL.
const lifecycleOnPostgresEnv = "SINKBUS_LIFECYCLE_ON_POSTGRES"

func lifecycleOnPostgres() bool { return os.Getenv(lifecycleOnPostgresEnv) != "" }

// notOnPostgres skips a lifecycle test that cannot run on PostgreSQL, and
// says why.
func notOnPostgres(t *testing.T, why string) {
	t.Helper()
	if lifecycleOnPostgres() {
		t.Skip("not on PostgreSQL: " + why)
	}
}

// handlerOf returns a HandlerFunc that sends each event's id to a channel.
func handlerOf(got chan<- string) bus.HandlerFunc {
	return func(_ context.Context, e bus.Event) error {
		got <- e.ID
		return nil
	}
}
