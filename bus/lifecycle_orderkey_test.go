package bus_test

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/bustest"
	"github.com/sinkbus/sinkbus/sinks"
)

// groupedSink stands for a destination that keeps order per tenant (an SQS
// FIFO queue): it says so through sinks.OrderKeyer and records, per tenant,
// the order of arrival and how many deliveries overlapped.
type groupedSink struct {
	mu       sync.Mutex
	inFlight map[string]int
	overlap  map[string]bool
	order    map[string][]string
}

func (s *groupedSink) Type() string                 { return "grouped" }
func (s *groupedSink) Validate() error              { return nil }
func (s *groupedSink) Masked() sinks.Config         { return s }
func (s *groupedSink) MarshalJSON() ([]byte, error) { return []byte("{}"), nil }
func (s *groupedSink) DefaultOrderKey() string      { return "tenant" }
func (s *groupedSink) NewPublisher(sinks.Env) (message.Publisher, error) {
	return s, nil
}
func (s *groupedSink) Close() error { return nil }

func (s *groupedSink) Publish(_ string, msgs ...*message.Message) error {
	for _, m := range msgs {
		tenant := m.Metadata.Get(sinks.MetaTenant)
		s.mu.Lock()
		s.inFlight[tenant]++
		if s.inFlight[tenant] > 1 {
			s.overlap[tenant] = true
		}
		s.mu.Unlock()
		time.Sleep(100 * time.Microsecond) // gives other deliveries the chance to overlap
		s.mu.Lock()
		s.inFlight[tenant]--
		s.order[tenant] = append(s.order[tenant], m.UUID)
		s.mu.Unlock()
	}
	return nil
}

func TestIntegrations_sink_order_key_orders_events_without_a_value_too(t *testing.T) {
	sink := &groupedSink{inFlight: map[string]int{}, overlap: map[string]bool{}, order: map[string][]string{}}
	reg := bustest.Registry()
	require.NoError(t, reg.Register(sinks.Type{Name: "grouped", Decode: func(json.RawMessage) (sinks.Config, error) {
		return sink, nil
	}}))
	tb := lifecycleBus(t, func(c *bus.Config) { c.Sinks = reg })
	tb.Create(bus.Integration{ID: "fifo", Concurrency: 8, Sink: sink})

	want := map[string][]string{}
	var events []bus.Event
	for i := range 60 {
		tenant := []string{"", "acme", ""}[i%3] // most have no tenant
		id := fmt.Sprintf("e-%02d", i)
		want[tenant] = append(want[tenant], id)
		events = append(events, bus.Event{ID: id, Name: "order.created", Tenant: tenant})
	}
	tb.MustPublish(events...)
	settled(t, tb.Bus, "fifo")

	sink.mu.Lock()
	defer sink.mu.Unlock()
	assert.Equal(t, want, sink.order, "publication order within each group, the group without a tenant included")
	assert.Empty(t, sink.overlap, "one delivery at a time per group")
}
