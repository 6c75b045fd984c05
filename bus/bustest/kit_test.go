package bustest_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/bustest"
	"github.com/sinkbus/sinkbus/replay"
	"github.com/sinkbus/sinkbus/sinks"
)

func TestCheckout(t *testing.T) { testCheckout(t) }

func TestSink_records_whether_a_delivery_is_replayed(t *testing.T) {
	s := bustest.NewSink()
	live := message.NewMessage("o-1", []byte(`{}`))
	live.Metadata.Set(sinks.MetaName, "order.created")
	replayed := live.Copy()
	replayed.Metadata.Set(sinks.MetaReplayed, "true")
	require.NoError(t, s.Publish("order.created", live, replayed))

	got := s.Events()
	require.Len(t, got, 2)
	assert.False(t, got[0].Replayed)
	assert.True(t, got[1].Replayed)
	assert.Empty(t, got[1].Metadata, "the bus's own keys are not user metadata")
}

func TestBus_NewSinkIntegration_sees_replays_marked(t *testing.T) {
	tb := bustest.New(t)
	got := tb.NewSinkIntegration(bus.Integration{ID: "erp", Observes: []string{"order.*"}})
	tb.MustPublish(bus.Event{ID: "o-1", Name: "order.created"})
	got.WaitFor(t, 1)

	job, err := tb.Integrations().Replay(context.Background(), "erp", replay.Request{})
	require.NoError(t, err)
	<-job.Done
	events := got.WaitFor(t, 2)
	assert.Equal(t, []bool{false, true}, []bool{events[0].Replayed, events[1].Replayed})
}

func TestSink_Wait_returns_what_arrived_when_the_context_ends(t *testing.T) {
	tb := bustest.New(t)
	got := tb.Record("order.*")
	tb.MustPublish(bus.Event{Name: "order.created"})
	events, err := got.Wait(context.Background(), 1)
	require.NoError(t, err)
	require.Len(t, events, 1)

	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	events, err = got.Wait(ctx, 2)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Len(t, events, 1)
}

// MustWaitDelivered returns once what was published is settled, a
// rejection included, and only then.
func TestBus_MustWaitDelivered(t *testing.T) {
	tb := bustest.New(t)
	ok := tb.Record("order.*")
	refusing := tb.Record("order.*")
	refusing.FailNext(1, 400)
	tb.MustPublish(bus.Event{ID: "e1", Name: "order.created"})
	tb.MustWaitDelivered()
	assert.Len(t, ok.Events(), 1)
	assert.Equal(t, 1, refusing.Attempts())
}
