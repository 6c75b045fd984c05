package main

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/bustest"
	"github.com/sinkbus/sinkbus/internal/testenv"
)

// testExchange returns a fresh exchange name, deleted with the queue the
// example binds to it when the test ends.
func testExchange(t *testing.T, amqpURL string) string {
	name := "sinkbus-test." + watermill.NewShortUUID()
	t.Cleanup(func() {
		conn, err := amqp091.Dial(amqpURL)
		if err != nil {
			return
		}
		defer conn.Close()
		if ch, err := conn.Channel(); err == nil {
			_, _ = ch.QueueDelete(name+"_reader", false, false, false)
			_ = ch.ExchangeDelete(name, false, false)
		}
	})
	return name
}

// Against RabbitMQ: both events arrive through the exchange, each with
// its event id as the message UUID and the envelope as the body.
func TestAMQPExample_delivers_through_rabbitmq(t *testing.T) {
	amqpURL := testenv.Server(t, "SINKBUS_AMQP_URL")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, run(ctx, &out, amqpURL, testExchange(t, amqpURL)))
	assert.Equal(t, "received o-1 order.created {\"order_id\":\"7\",\"total\":42}\nreceived o-2 order.created {\"order_id\":\"7\",\"total\":42}\n", out.String())
}

// An exchange the broker refuses (declared before with another type) is
// the destination's fault, not the moment's: the Classify hook makes it
// permanent, and the event is rejected at its first attempt, with the
// broker's reason.
func TestAMQPType_refused_exchange_rejects_the_event_at_once(t *testing.T) {
	amqpURL := testenv.Server(t, "SINKBUS_AMQP_URL")
	exchange := testExchange(t, amqpURL)
	conn, err := amqp091.Dial(amqpURL)
	require.NoError(t, err)
	defer conn.Close()
	ch, err := conn.Channel()
	require.NoError(t, err)
	require.NoError(t, ch.ExchangeDeclare(exchange, "direct", false, true, false, false, nil))

	tb := bustest.New(t)
	tb.Create(bus.Integration{ID: "erp", Sink: AMQP.Config(Settings{URL: amqpURL, Exchange: exchange})})
	tb.MustPublish(bus.Event{ID: "o-1", Name: "order.created"})
	require.Eventually(t, func() bool {
		rejected, err := tb.Integrations().Rejected(context.Background(), "erp")
		return err == nil && len(rejected) == 1
	}, 30*time.Second, 10*time.Millisecond)
	rejected, err := tb.Integrations().Rejected(context.Background(), "erp")
	require.NoError(t, err)
	assert.Equal(t, 1, rejected[0].Attempts)
	assert.Contains(t, rejected[0].Reason, "PRECONDITION_FAILED")
}

// The amqp type is known to the bus's JSON: settings validated, naming the
// field, and the password masked on every read.
func TestAMQPType_from_JSON_validated_and_masked(t *testing.T) {
	tb := bustest.New(t)
	_, err := tb.Integrations().Create(context.Background(), decode(t, tb, `{"integration_type":"amqp","configuration":{"url":"http://x"}}`))
	require.ErrorIs(t, err, bus.ErrInvalid)
	assert.Contains(t, err.Error(), "configuration.url: must be an amqp:// or amqps:// URL")

	in := decode(t, tb, `{"integration_type":"amqp","status":"stopped","configuration":{"url":"amqp://app:s3cret-password@rabbit:5672/"}}`)
	out, err := tb.Integrations().Create(context.Background(), in)
	require.NoError(t, err)
	shown, err := json.Marshal(out.Sink)
	require.NoError(t, err)
	assert.JSONEq(t, `{"url":"amqp://app:%2A%2A%2A%2Aword@rabbit:5672/"}`, string(shown))
}

func decode(t *testing.T, tb *bustest.Bus, body string) bus.Integration {
	t.Helper()
	in, err := tb.Integrations().Decode([]byte(body))
	require.NoError(t, err)
	return in
}
