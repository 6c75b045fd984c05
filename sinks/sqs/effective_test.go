package sqs_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/bustest"
	"github.com/sinkbus/sinkbus/bus/formats"
	"github.com/sinkbus/sinkbus/sinks/sqs"
)

// A FIFO queue's integration orders by its message group without an order
// key of its own: reads say so (Effective, and "effective" in every JSON
// shape), and what is saved stays empty, so that the default follows the
// queue.
func TestSQS_readback_shows_the_FIFO_order_key_in_force_as_a_default(t *testing.T) {
	tb := bustest.New(t)
	m := tb.Integrations()
	const fifo = "https://sqs.us-east-1.amazonaws.com/123456789012/orders.fifo"
	for _, c := range []struct {
		name        string
		in          bus.Integration
		orderKey    string
		fromDefault bool
	}{
		{"fifo", bus.Integration{Sink: sqs.Config{URL: fifo}}, "tenant", true},
		{"fifo by order", bus.Integration{Sink: sqs.Config{URL: fifo, FIFOGroupKey: "payload.order_id"}}, "payload.order_id", true},
		{"fifo, own key", bus.Integration{Sink: sqs.Config{URL: fifo}, OrderKey: "name"}, "name", false},
		{"standard", bus.Integration{Sink: sqs.Config{URL: "https://sqs.us-east-1.amazonaws.com/123456789012/orders"}}, "", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.in.Status = bus.Stopped
			created, err := m.Create(context.Background(), c.in)
			require.NoError(t, err)
			got, err := m.Get(context.Background(), created.ID)
			require.NoError(t, err)
			assert.Equal(t, created.Effective, got.Effective)
			assert.Equal(t, c.orderKey, got.Effective.OrderKey)
			assert.Equal(t, c.fromDefault, slices.Contains(got.Effective.Defaults, "order_key"))
			assert.Equal(t, c.in.OrderKey, got.OrderKey, "the integration keeps what was set")
			assert.Equal(t, 8, got.Effective.Concurrency)
			assert.Contains(t, got.Effective.Defaults, "concurrency")

			for _, f := range []formats.Format{formats.Sinkbus, formats.ElasticPath, formats.NewStore} {
				obj, err := formats.Render(f, got, "")
				require.NoError(t, err)
				if f == formats.ElasticPath {
					obj = obj["data"].(map[string]any)
				}
				eff := obj["effective"].(map[string]any)
				if c.orderKey == "" {
					assert.NotContains(t, eff, "order_key")
				} else {
					assert.Equal(t, c.orderKey, eff["order_key"], f)
				}
				// What a client reads it may send back.
				body, err := json.Marshal(obj)
				require.NoError(t, err)
				if f == formats.ElasticPath {
					body, _ = json.Marshal(map[string]any{"data": obj})
				}
				_, _, err = formats.Update(context.Background(), m, got.ID, body)
				require.NoError(t, err, f)
			}
		})
	}
}
