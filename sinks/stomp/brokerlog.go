package stomp

import (
	"strconv"
	"sync"
	"time"

	"github.com/sinkbus/sinkbus/internal/clock"
)

// Actions of the entries the sink writes into the integration log
// (sinks.Env.Log) about its broker connections. Reasons hold addresses and
// error texts, never credentials.
const (
	// ActionConnectionLost: a connection that was up dropped, with the
	// address and why.
	ActionConnectionLost = "broker_connection_lost"
	// ActionConnectionRestored: a connection is up again after a loss, with
	// the address and how long after the first loss.
	ActionConnectionRestored = "broker_connection_restored"
	// ActionFailover: a connection came up on another address than the one
	// the last connection used (or, at the start, than the first address).
	ActionFailover = "broker_failover"
)

// brokerLogEvery is the least time between two integration-log entries of
// one action: a flapping broker must not push the retries and rejections
// out of a log that keeps its last 50 entries.
const brokerLogEvery = time.Minute

// brokerLog writes connection trouble into the integration log, rate
// limited per action; an entry says how many were left out before it.
type brokerLog struct {
	log   func(action, reason string)
	clock clock.Clock

	mu      sync.Mutex
	last    map[string]time.Time
	skipped map[string]int
	lostAt  time.Time // first loss not yet followed by a connection up
}

func newBrokerLog(log func(action, reason string), clk clock.Clock) *brokerLog {
	return &brokerLog{log: log, clock: clk, last: map[string]time.Time{}, skipped: map[string]int{}}
}

// lost records that a connection to addr dropped.
func (b *brokerLog) lost(addr string, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.clock.Now()
	if b.lostAt.IsZero() {
		b.lostAt = now
	}
	b.entry(now, ActionConnectionLost, addr+": "+bare(err))
}

// up records that a connection to addr is up; from is the address the last
// connection used when it was another one.
func (b *brokerLog) up(addr, from string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.clock.Now()
	if from != "" {
		b.entry(now, ActionFailover, "connected to "+addr+" instead of "+from)
	}
	if !b.lostAt.IsZero() {
		b.entry(now, ActionConnectionRestored, addr+": connection up "+now.Sub(b.lostAt).Round(time.Millisecond).String()+" after the loss")
		b.lostAt = time.Time{}
	}
}

// entry writes one entry unless one of the same action was written less
// than brokerLogEvery ago. Call with b.mu held: entries keep their order.
func (b *brokerLog) entry(now time.Time, action, reason string) {
	if last, ok := b.last[action]; ok && now.Sub(last) < brokerLogEvery {
		b.skipped[action]++
		return
	}
	if n := b.skipped[action]; n > 0 {
		reason += " (" + strconv.Itoa(n) + " more since the last entry)"
		b.skipped[action] = 0
	}
	b.last[action] = now
	b.log(action, reason)
}
