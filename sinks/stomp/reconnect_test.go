package stomp_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3/frame"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/internal/clock"
	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/stomp"
)

// blockUntil waits until the fake clock has n timers pending, that is, until
// the code under test is surely waiting on it.
func blockUntil(t *testing.T, clk *clock.Fake, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	require.NoError(t, clk.BlockUntil(ctx, n), "nothing waits on the clock")
}

func TestStompSink_connect_frame_headers(t *testing.T) {
	for _, tc := range []struct {
		name            string
		cfg             stomp.Config
		host, heartBeat string
		login, passcode string
		hasLogin        bool
	}{
		{name: "defaults", host: "/", heartBeat: "10000,10000"},
		{
			name: "vhost, heart-beats and login",
			cfg: stomp.Config{VHost: "shop", HeartBeatSend: sinks.Duration(5 * time.Second),
				HeartBeatReceive: -1, Username: "user1", Password: "pass-d123"},
			host: "shop", heartBeat: "5000,0", login: "user1", passcode: "pass-d123", hasLogin: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newFakeBroker(t)
			cfg := tc.cfg
			cfg.Addresses, cfg.Destination, cfg.Connections = []string{b.addr()}, "/queue/q", 1
			newSink(t, cfg, sinks.Env{})
			var f *frame.Frame
			select {
			case f = <-b.connectFrames:
			case <-time.After(wait):
				t.Fatal("no CONNECT")
			}
			assert.Equal(t, frame.CONNECT, f.Command)
			assert.Equal(t, tc.host, f.Header.Get(frame.Host), "not the dialled address: RabbitMQ reads it as the vhost")
			assert.Equal(t, tc.heartBeat, f.Header.Get(frame.HeartBeat))
			_, has := f.Header.Contains(frame.Login)
			assert.Equal(t, tc.hasLogin, has)
			assert.Equal(t, tc.login, f.Header.Get(frame.Login))
			assert.Equal(t, tc.passcode, f.Header.Get(frame.Passcode))
		})
	}
}

// A broker that takes the TCP connection but never answers CONNECT: the
// connect timeout (on the sink's clock) ends the attempt, retryably, and the
// next address takes the event.
func TestStompSink_connect_timeout_moves_to_next_address(t *testing.T) {
	silent, good := silentBroker(t), newFakeBroker(t)
	clk := clock.NewFake(time.Time{})
	dialErrs := make(chan error, 10)
	p := newSink(t, stomp.Config{
		Addresses: []string{silent, good.addr()}, Destination: "/queue/q", Connections: 1,
		ConnectTimeout: sinks.Duration(4 * time.Second), HeartBeatReceive: -1,
	}, sinks.Env{Clock: clk}, stomp.OnDialError(func(_ string, err error) { dialErrs <- err }))

	blockUntil(t, clk, 1)
	d, _ := clk.NextDue()
	assert.Equal(t, 4*time.Second, d, "the connect timeout")
	assert.Equal(t, int32(0), good.connects.Load(), "the first address is tried first")
	clk.Advance(4 * time.Second)

	var err error
	select {
	case err = <-dialErrs:
	case <-time.After(wait):
		t.Fatal("the connect did not time out")
	}
	require.ErrorIs(t, err, stomp.ErrConnectTimeout)
	class, _ := sinks.Classify(err)
	assert.Equal(t, sinks.ClassRetryable, class, "%v", err)
	assert.Contains(t, err.Error(), "stomp://"+silent)

	require.NoError(t, p.Publish("", event("order.created", "", `{}`)))
	assert.Equal(t, 1, good.nextSend(t).conn)
}

// The first address connects but never confirms a send: after the receipt
// timeout the connection goes to the second address, which delivers.
func TestStompSink_receipt_timeout_fails_over_to_next_address(t *testing.T) {
	mute, good := newFakeBroker(t), newFakeBroker(t)
	mute.onSend = func(int, *frame.Frame) sendAction { return holdReceipt }
	clk := clock.NewFake(time.Time{})
	p := newSink(t, stomp.Config{
		Addresses: []string{mute.addr(), good.addr()}, Destination: "/queue/q", Connections: 1,
		ReceiptTimeout: sinks.Duration(3 * time.Second), HeartBeatReceive: -1,
	}, sinks.Env{Clock: clk})

	msg := event("order.created", "", `{}`)
	res := make(chan error, 1)
	go func() { res <- p.Publish("", msg) }()
	assert.Equal(t, msg.UUID, mute.nextSend(t).frame.Header.Get(stomp.HeaderID))
	blockUntil(t, clk, 1)
	clk.Advance(3 * time.Second)
	require.ErrorIs(t, recvErr(t, res), stomp.ErrReceiptTimeout)

	// The retry, as the bus makes it, goes to the second address.
	go func() { res <- p.Publish("", msg) }()
	assert.Equal(t, msg.UUID, good.nextSend(t).frame.Header.Get(stomp.HeaderID))
	require.NoError(t, recvErr(t, res))
	assert.Equal(t, int32(1), mute.connects.Load(), "the silent broker was not redialled")
}

func TestStompSink_error_frame_fails_over_to_next_address(t *testing.T) {
	bad, good := newFakeBroker(t), newFakeBroker(t)
	bad.errReply = brokerError("Internal error", "broker in trouble")
	bad.onSend = func(int, *frame.Frame) sendAction { return errorFrame }
	clk := clock.NewFake(time.Time{})
	p := newSink(t, stomp.Config{
		Addresses: []string{"failover:(" + bad.addr() + "," + good.addr() + ")"}, Destination: "/queue/q",
		Connections: 1, HeartBeatReceive: -1,
	}, sinks.Env{Clock: clk})

	msg := event("order.created", "", `{}`)
	err := p.Publish("", msg)
	class, _ := sinks.Classify(err)
	require.Equal(t, sinks.ClassRetryable, class, "%v", err)

	// The connection lived no time on the fake clock: a pause, then the
	// second address.
	res := make(chan error, 1)
	go func() { res <- publishRetrying(context.Background(), p, msg) }()
	blockUntil(t, clk, 1)
	clk.Advance(time.Minute)
	assert.Equal(t, msg.UUID, good.nextSend(t).frame.Header.Get(stomp.HeaderID))
	require.NoError(t, recvErr(t, res))
	assert.Equal(t, int32(1), bad.connects.Load())
}

// A broker that accepts every connection and drops it at once: each
// connection that lived less than ReconnectWait counts as a failed attempt
// and is followed by a pause that doubles up to MaxReconnectWait. Without
// the pauses, go-stomp redials thousands of times a second.
func TestStompSink_broker_dropping_at_once_is_not_redialled_hot(t *testing.T) {
	b := newFakeBroker(t)
	b.dropAfterConnect = func(int) bool { return true }
	clk := clock.NewFake(time.Time{})
	newSink(t, stomp.Config{
		Addresses: []string{b.addr()}, Destination: "/queue/q", Connections: 1, HeartBeatReceive: -1,
		ReconnectWait: sinks.Duration(time.Second), MaxReconnectWait: sinks.Duration(4 * time.Second),
		ReconnectJitter: -1,
	}, sinks.Env{Clock: clk})

	for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second} {
		waitDue(t, clk, want)
		assert.Equal(t, int32(i+1), b.connects.Load(), "one connect per pause")
		clk.Advance(want)
	}
}

func TestStompSink_reconnect_delay_grows_over_failed_rounds(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	dialErrs := make(chan string, 100)
	newSink(t, stomp.Config{
		Addresses: []string{closedAddr(t), closedAddr(t)}, Destination: "/queue/q", Connections: 1,
		ReconnectWait: sinks.Duration(time.Second), MaxReconnectWait: sinks.Duration(5 * time.Second),
		ReconnectJitter: -1,
	}, sinks.Env{Clock: clk}, stomp.OnDialError(func(addr string, _ error) { dialErrs <- addr }))

	for i, want := range []time.Duration{1, 2, 4, 5, 5} {
		waitDue(t, clk, want*time.Second)
		assert.Len(t, dialErrs, 2, "both addresses once in round %d", i+1)
		recvAddr(t, dialErrs)
		recvAddr(t, dialErrs)
		clk.Advance(want * time.Second)
	}
}

// With MaxReconnects, a connection that gave up is started again by a
// Publish even while other connections are up (the pool would stay short
// otherwise), and at most once per ReconnectWait however often Publish runs.
func TestStompSink_max_reconnects_wakes_while_others_are_up(t *testing.T) {
	b := newFakeBroker(t)
	b.onConnect = func(n int, _ *frame.Frame) *frame.Frame {
		if n == 2 {
			return brokerError("Processing error", "too busy") // retryable
		}
		return nil
	}
	clk := clock.NewFake(time.Time{})
	connected := make(chan string, 10)
	dialErrs := make(chan string, 10)
	p := newSink(t, stomp.Config{
		Addresses: []string{b.addr()}, Destination: "/queue/q", Connections: 2, HeartBeatReceive: -1,
		MaxReconnects: 1, ReconnectJitter: -1,
	}, sinks.Env{Clock: clk},
		stomp.OnConnect(func(addr string) { connected <- addr }),
		stomp.OnDialError(func(addr string, _ error) { dialErrs <- addr }))

	recvAddr(t, connected) // one is up
	recvAddr(t, dialErrs)  // the other gave up at once
	require.Eventually(t, func() bool {
		require.NoError(t, p.Publish("", event("order.created", "", `{}`)), "the other connection serves")
		return b.connects.Load() == 3
	}, wait, time.Millisecond, "Publish woke the connection that gave up")
	recvAddr(t, connected) // the pool is whole again
}

func TestStompSink_wakes_given_up_connections_once_per_reconnect_wait(t *testing.T) {
	down := closedAddr(t)
	clk := clock.NewFake(time.Time{})
	dialErrs := make(chan string, 100)
	p := newSink(t, stomp.Config{
		Addresses: []string{down}, Destination: "/queue/q", Connections: 1,
		MaxReconnects: 1, ReconnectWait: sinks.Duration(2 * time.Second), ReconnectJitter: -1,
	}, sinks.Env{Clock: clk}, stomp.OnDialError(func(addr string, _ error) { dialErrs <- addr }))
	recvAddr(t, dialErrs) // gave up

	require.ErrorIs(t, p.Publish("", event("order.created", "", `{}`)), stomp.ErrNotConnected)
	recvAddr(t, dialErrs) // woken: dialled again, gave up again
	for range 20 {
		require.ErrorIs(t, p.Publish("", event("order.created", "", `{}`)), stomp.ErrNotConnected)
	}
	assert.Empty(t, dialErrs, "no more dials within ReconnectWait")
	clk.Advance(2 * time.Second)
	require.Eventually(t, func() bool {
		require.ErrorIs(t, p.Publish("", event("order.created", "", `{}`)), stomp.ErrNotConnected)
		return len(dialErrs) > 0
	}, wait, time.Millisecond, "woken again once ReconnectWait passed")
}

// waitDue waits until the earliest timer pending on the fake clock is due
// in d: the code under test is waiting that long (a connect under way has
// a timer of its own, due later).
func waitDue(t *testing.T, clk *clock.Fake, d time.Duration) {
	t.Helper()
	require.Eventually(t, func() bool {
		due, ok := clk.NextDue()
		return ok && due == d
	}, wait, time.Millisecond, "nothing due in %s", d)
}

// recvAddr waits for an address from a callback.
func recvAddr(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case a := <-ch:
		return a
	case <-time.After(wait):
		t.Fatal("no callback")
		return ""
	}
}

// entry is one integration-log entry a sink wrote through Env.Log.
type entry struct{ action, reason string }

type integrationLog struct {
	mu      sync.Mutex
	entries []entry
}

func (l *integrationLog) log(action, reason string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = append(l.entries, entry{action, reason})
}

func (l *integrationLog) all() []entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]entry(nil), l.entries...)
}

func (l *integrationLog) waitFor(t *testing.T, action string) entry {
	t.Helper()
	var found entry
	require.Eventually(t, func() bool {
		for _, e := range l.all() {
			if e.action == action {
				found = e
				return true
			}
		}
		return false
	}, wait, time.Millisecond, "no %s entry in %v", action, l.all())
	return found
}

func count(entries []entry, action string) int {
	n := 0
	for _, e := range entries {
		if e.action == action {
			n++
		}
	}
	return n
}

func TestStompSink_writes_connection_trouble_into_the_integration_log(t *testing.T) {
	first, second := newFakeBroker(t), newFakeBroker(t)
	first.onSend = func(int, *frame.Frame) sendAction { return dropConn }
	clk := clock.NewFake(time.Time{})
	var ilog integrationLog
	p := newSink(t, stomp.Config{
		Addresses: []string{first.addr(), second.addr()}, Destination: "/queue/q", Connections: 1,
		HeartBeatReceive: -1, Username: "user1", Password: "s3cr3t-passcode",
	}, sinks.Env{Clock: clk, Log: ilog.log})

	require.ErrorIs(t, p.Publish("", event("order.created", "", `{}`)), stomp.ErrConnectionLost)
	lost := ilog.waitFor(t, stomp.ActionConnectionLost)
	assert.Contains(t, lost.reason, "stomp://"+first.addr())
	assert.Contains(t, lost.reason, "connection lost")

	blockUntil(t, clk, 1) // died young: a pause
	clk.Advance(3 * time.Second)
	failover := ilog.waitFor(t, stomp.ActionFailover)
	assert.Equal(t, "connected to stomp://"+second.addr()+" instead of stomp://"+first.addr(), failover.reason)
	restored := ilog.waitFor(t, stomp.ActionConnectionRestored)
	assert.Contains(t, restored.reason, "stomp://"+second.addr())
	assert.Contains(t, restored.reason, "after the loss")
	for _, e := range ilog.all() {
		assert.NotContains(t, e.reason, "s3cr3t", "no secret in the integration log")
	}
}

func TestStompSink_integration_log_is_rate_limited(t *testing.T) {
	b := newFakeBroker(t)
	b.dropAfterConnect = func(int) bool { return true }
	clk := clock.NewFake(time.Time{})
	var ilog integrationLog
	newSink(t, stomp.Config{
		Addresses: []string{b.addr()}, Destination: "/queue/q", Connections: 1, HeartBeatReceive: -1,
		ReconnectWait: sinks.Duration(time.Second), MaxReconnectWait: sinks.Duration(time.Second), ReconnectJitter: -1,
	}, sinks.Env{Clock: clk, Log: ilog.log})

	// 10 drops within 10 s: one entry of each kind.
	for range 10 {
		waitDue(t, clk, time.Second)
		clk.Advance(time.Second)
	}
	waitDue(t, clk, time.Second)
	got := ilog.all()
	assert.Equal(t, 1, count(got, stomp.ActionConnectionLost), "%v", got)
	assert.Equal(t, 1, count(got, stomp.ActionConnectionRestored), "%v", got)

	// A minute later the next entry says how many were left out.
	for range 60 {
		clk.Advance(time.Second)
		waitDue(t, clk, time.Second)
	}
	got = ilog.all()
	require.Equal(t, 2, count(got, stomp.ActionConnectionLost), "%v", got)
	var last entry
	for _, e := range got {
		if e.action == stomp.ActionConnectionLost {
			last = e
		}
	}
	assert.Contains(t, last.reason, "more since the last entry")
}
