package stomp_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/stomp"
)

// What a consumer of the queue sees (README, "What a consumer sees"): the
// envelope as application/json with sinkbus-* headers, persistent, the
// metadata as headers; RabbitMQ also passes the SEND's receipt header
// through to the consumer, ActiveMQ does not.
func TestStompSink_what_a_consumer_sees(t *testing.T) {
	passesReceipt := map[string]bool{"rabbitmq": true, "activemq": false}
	for name, get := range realBrokers(t) {
		t.Run(name, func(t *testing.T) {
			b := get(t)
			dest := testDest()
			ch := b.subscribe(t, dest)
			p := newSink(t, b.config(dest), sinks.Env{})
			msg := event("order.created", "acme", `{"n":1}`)
			msg.Metadata.Set("source", "storefront")
			require.NoError(t, p.Publish("", msg))
			m := readAll(t, ch, map[string]bool{msg.UUID: true})[msg.UUID]

			assert.Equal(t, "application/json", m.ContentType)
			assert.Equal(t, msg.UUID, m.Header.Get(stomp.HeaderID))
			assert.Equal(t, "order.created", m.Header.Get(stomp.HeaderName))
			assert.Equal(t, "acme", m.Header.Get(stomp.HeaderTenant))
			assert.Equal(t, "storefront", m.Header.Get("source"))
			assert.Equal(t, "true", m.Header.Get("persistent"))
			_, hasReceipt := m.Header.Contains("receipt")
			assert.Equal(t, passesReceipt[name], hasReceipt, "receipt header: %v", m.Header)
		})
	}
}
