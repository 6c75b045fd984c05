package bus_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/bustest"
	"github.com/sinkbus/sinkbus/sinks"
)

// loggingSink logs one line per event through the logger the bus gives it.
type loggingSink struct{}

func (loggingSink) Type() string                 { return "logging" }
func (loggingSink) Validate() error              { return nil }
func (s loggingSink) Masked() sinks.Config       { return s }
func (loggingSink) MarshalJSON() ([]byte, error) { return []byte("{}"), nil }
func (loggingSink) NewPublisher(env sinks.Env) (message.Publisher, error) {
	return loggingPublisher{env.Logger}, nil
}

type loggingPublisher struct{ log watermill.LoggerAdapter }

func (p loggingPublisher) Publish(_ string, msgs ...*message.Message) error {
	for _, m := range msgs {
		p.log.Info("Sink sent", watermill.LogFields{"event_id": m.UUID})
	}
	return nil
}

func (loggingPublisher) Close() error { return nil }

// Lines about an integration carry its id, lines about an event its id,
// the bus's own and its sinks' alike.
func TestBus_Logger_lines_carry_integration_and_event_ids(t *testing.T) {
	logs := newLogRecords()
	reg := bustest.Registry()
	require.NoError(t, reg.Register(sinks.Type{Name: "logging", Decode: func(json.RawMessage) (sinks.Config, error) { return loggingSink{}, nil }}))
	tb := bustest.New(t, func(c *bus.Config) { c.Logger = slog.New(logs); c.Sinks = reg })
	sink := tb.NewSinkIntegration(bus.Integration{ID: "erp"})
	tb.Create(bus.Integration{ID: "sent", Sink: loggingSink{}})
	sink.FailNext(1, 503)
	tb.MustPublish(bus.Event{ID: "e1", Name: "order.created"})
	require.NoError(t, tb.Clock.BlockUntil(waitCtx(t), 1))
	tb.Clock.Advance(time.Hour)
	sink.WaitFor(t, 1)

	retry := logs.lines("Delivery failed, retrying")
	require.Len(t, retry, 1)
	assert.Equal(t, "erp", retry[0]["integration_id"])
	assert.Equal(t, "e1", retry[0]["event_id"])
	require.Eventually(t, func() bool { return len(logs.lines("Sink sent")) == 1 }, 10*time.Second, time.Millisecond)
	sent := logs.lines("Sink sent")[0]
	assert.Equal(t, "sent", sent["integration_id"])
	assert.Equal(t, "e1", sent["event_id"])
}

// Stopping an integration whose event waits in a backoff nacks the event
// as planned: no error line says a handler failed.
func TestBus_Logger_stop_with_events_waiting_logs_no_error(t *testing.T) {
	logs := newLogRecords()
	tb := bustest.New(t, func(c *bus.Config) { c.Logger = slog.New(logs) })
	sink := tb.NewSinkIntegration(bus.Integration{ID: "erp"})
	sink.FailNext(1, 503)
	tb.MustPublish(bus.Event{ID: "e1", Name: "order.created"})
	require.NoError(t, tb.Clock.BlockUntil(waitCtx(t), 1), "the event waits in its backoff")
	_, err := tb.Integrations().Stop(ctx, "erp")
	require.NoError(t, err)

	logs.mu.Lock()
	defer logs.mu.Unlock()
	for _, r := range *logs.recs {
		assert.Less(t, r.Level, slog.LevelWarn, "%s", r.Message)
	}
}

// Without a Logger, warnings and errors go to slog.Default(): a sink that
// cannot start is never silent; routine lines stay out.
func TestBus_Logger_default_logs_errors_through_slog_Default(t *testing.T) {
	var buf syncBuffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { slog.SetDefault(prev) })

	b, err := bus.New(bus.Config{Sinks: lifecycleRegistry(t)})
	require.NoError(t, err)
	_, err = b.Integrations().Create(ctx, bus.Integration{ID: "broken", Sink: &testSink{newErr: errors.New("broker unreachable")}})
	require.NoError(t, err)
	runCtx, cancel := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- b.Run(runCtx) }()
	<-b.Running()
	cancel()
	require.NoError(t, <-ran)
	require.NoError(t, b.Close())

	out := buf.String()
	assert.Contains(t, out, `level=ERROR msg="Cannot start integration" error="broker unreachable" integration_id=broken`)
	assert.NotContains(t, out, "level=INFO")
	assert.NotContains(t, out, "level=DEBUG")
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
