package bus_test

import (
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/replay/segments"
)

// calls records every call an Observer gets.
type calls struct{ got []string }

func (c *calls) Attempted(typ string, a middleware.Attempt) {
	c.got = append(c.got, "attempted "+a.EventID)
}
func (c *calls) Rejected(id, _ string, _ middleware.RejectedEvent) {
	c.got = append(c.got, "rejected "+id)
}
func (c *calls) Skipped(id, _ string, _ *message.Message) { c.got = append(c.got, "skipped "+id) }
func (c *calls) SkippedWhileOpen(id, _ string, _ *message.Message) {
	c.got = append(c.got, "skipped-open "+id)
}
func (c *calls) LostToRetention(id, _ string, _ uint64)  { c.got = append(c.got, "lost "+id) }
func (c *calls) Throttled(id, _ string, _ time.Duration) { c.got = append(c.got, "throttled "+id) }
func (c *calls) JournalDamaged(d segments.Damage)        { c.got = append(c.got, "damaged") }
func (c *calls) JournalSynced(s segments.Synced)         { c.got = append(c.got, "synced "+s.Topic) }

// Observers tells each observer every call, in order, and leaves nil ones
// out.
func TestObservers_tells_each_observer_every_call(t *testing.T) {
	a, b := &calls{}, &calls{}
	o := bus.Observers(a, nil, b)
	o.Attempted("webhook", middleware.Attempt{EventID: "e1"})
	o.Rejected("erp", "webhook", middleware.RejectedEvent{})
	o.Skipped("erp", "webhook", nil)
	o.SkippedWhileOpen("erp", "webhook", nil)
	o.LostToRetention("erp", "webhook", 3)
	o.Throttled("erp", "webhook", time.Second)
	o.JournalDamaged(segments.Damage{})
	o.JournalSynced(segments.Synced{Topic: "events"})
	want := []string{"attempted e1", "rejected erp", "skipped erp", "skipped-open erp", "lost erp", "throttled erp", "damaged", "synced events"}
	assert.Equal(t, want, a.got)
	assert.Equal(t, want, b.got)
}

// counter is an Observer that counts skipped events in bulk.
type counter struct {
	bus.NopObserver
	skipped map[string]int
}

func (c *counter) SkippedEvents(id, _ string, n int) { c.skipped[id] += n }

// Observers is a SkipCounter only when all its members are: one that
// wants messages still gets them.
func TestObservers_count_skips_in_bulk_only_when_every_member_does(t *testing.T) {
	a, b := &counter{skipped: map[string]int{}}, &counter{skipped: map[string]int{}}
	both, ok := bus.Observers(a, nil, b).(bus.SkipCounter)
	if assert.True(t, ok, "two SkipCounters make a SkipCounter") {
		both.SkippedEvents("erp", "webhook", 5)
		assert.Equal(t, 5, a.skipped["erp"])
		assert.Equal(t, 5, b.skipped["erp"])
	}
	_, ok = bus.Observers(a, &calls{}).(bus.SkipCounter)
	assert.False(t, ok, "a member that wants each skipped event keeps the whole in messages")
}
