package filter_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/filter"
	"github.com/sinkbus/sinkbus/sinks"
)

func event(name, payload string) *message.Message {
	msg := message.NewMessage(watermill.NewUUID(), []byte(payload))
	msg.Metadata.Set(sinks.MetaName, name)
	return msg
}

func TestMiddleware_calls_next_only_on_match(t *testing.T) {
	f := mustCompile(t, []string{"order.*"}, filter.Conditions{Payload: json.RawMessage(`{"total": {"$gte": 10}}`)})
	var skipped, handled []string
	errDown := errors.New("sink down")
	h := filter.Middleware(f, func(msg *message.Message) {
		skipped = append(skipped, msg.UUID)
	})(func(msg *message.Message) ([]*message.Message, error) {
		handled = append(handled, msg.UUID)
		return nil, errDown
	})

	tests := []struct {
		msg  *message.Message
		pass bool
	}{
		{event("order.created", `{"total": 10}`), true},
		{event("order.created", `{"total": 9}`), false},
		{event("cart.created", `{"total": 10}`), false},
		{event("order.created", `{"total": `), false},
		{message.NewMessage("no-name", []byte(`{"total": 10}`)), false},
	}
	for _, tc := range tests {
		skipped, handled = nil, nil
		out, err := h(tc.msg)
		assert.Nil(t, out)
		if tc.pass {
			assert.ErrorIs(t, err, errDown, "the handler's result passes through")
			assert.Equal(t, []string{tc.msg.UUID}, handled)
			assert.Empty(t, skipped)
		} else {
			assert.NoError(t, err, "a skipped event is acked")
			assert.Empty(t, handled)
			assert.Equal(t, []string{tc.msg.UUID}, skipped)
		}
	}
}

func TestMiddleware_nil_onSkip(t *testing.T) {
	f := mustCompile(t, []string{"order.created"}, filter.Conditions{})
	called := false
	h := filter.Middleware(f, nil)(func(*message.Message) ([]*message.Message, error) {
		called = true
		return nil, nil
	})
	out, err := h(event("cart.created", `{}`))
	assert.NoError(t, err)
	assert.Nil(t, out)
	assert.False(t, called)
}

// With BlockPublishUntilSubscriberAck, Publish returns only once the router
// acked the message; a nacked one would be redelivered and Publish would
// never return.
func TestMiddleware_router_acks_skipped_events(t *testing.T) {
	logger := watermill.NopLogger{}
	pubSub := gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true}, logger)
	t.Cleanup(func() { _ = pubSub.Close() })
	router, err := message.NewRouter(message.RouterConfig{}, logger)
	require.NoError(t, err)

	f := mustCompile(t, []string{"order.**"}, filter.Conditions{Payload: json.RawMessage(`{"paid": true}`)})
	skipped := make(chan string, 10)
	delivered := make(chan string, 10)
	h := router.AddConsumerHandler("integration", "events", pubSub, func(msg *message.Message) error {
		delivered <- msg.UUID
		return nil
	})
	h.AddMiddleware(filter.Middleware(f, func(msg *message.Message) { skipped <- msg.UUID }))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = router.Run(ctx) }()
	<-router.Running()
	t.Cleanup(func() { _ = router.Close() })

	msgs := []*message.Message{
		event("cart.updated", `{"paid": true}`),
		event("order.created", `{"paid": tru`),
		event("order.created", `{"paid": false}`),
		event("order.line.added", `{"paid": true}`),
	}
	done := make(chan error, 1)
	go func() {
		for _, m := range msgs {
			if err := pubSub.Publish("events", m); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("a skipped event was not acked")
	}

	assert.Equal(t, []string{msgs[0].UUID, msgs[1].UUID, msgs[2].UUID}, drain(skipped))
	assert.Equal(t, []string{msgs[3].UUID}, drain(delivered))
}

func drain(c chan string) []string {
	var out []string
	for {
		select {
		case s := <-c:
			out = append(out, s)
		default:
			return out
		}
	}
}
