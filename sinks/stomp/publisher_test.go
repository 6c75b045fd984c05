package stomp_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/go-stomp/stomp/v3/frame"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/field"
	"github.com/sinkbus/sinkbus/internal/clock"
	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/stomp"
)

func TestStompSink_sends_envelope_with_headers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	rec := startServer(t, ln, auth{"user1", "pass-d123"})
	p := newSink(t, stomp.Config{
		Addresses:   []string{"stomp://" + ln.Addr().String()},
		Destination: "/queue/queue1",
		Username:    "user1",
		Password:    "pass-d123",
	}, sinks.Env{})

	msg := event("address.updated", "acme", `{"id":"a-1","city":"Paris"}`)
	msg.Metadata.Set(sinks.MetaReplayed, "true")
	msg.Metadata.Set("source", "storefront")
	msg.Metadata.Set("order id:1", "o-1")   // cleaned to order_id_1
	msg.Metadata.Set("content-type", "x/y") // STOMP's own: not a header
	msg.Metadata.Set("receipt", "forged")
	msg.Metadata.Set("user-id", "mallory")         // RabbitMQ checks it against the login
	msg.Metadata.Set("AMQ_SCHEDULED_DELAY", "600") // ActiveMQ would delay the event
	msg.Metadata.Set("sinkbus-id", "spoofed")      // the sink's own
	require.NoError(t, p.Publish("ignored", msg))

	f := rec.next(t)
	h := f.Header
	assert.Equal(t, "/queue/queue1", h.Get(frame.Destination))
	assert.Equal(t, []string{"application/json"}, h.GetAll(frame.ContentType))
	assert.Equal(t, "true", h.Get("persistent"))
	assert.Equal(t, []string{msg.UUID}, h.GetAll(stomp.HeaderID))
	assert.Equal(t, "address.updated", h.Get(stomp.HeaderName))
	assert.Equal(t, "acme", h.Get(stomp.HeaderTenant))
	assert.Equal(t, "true", h.Get(stomp.HeaderReplayed))
	assert.Equal(t, "storefront", h.Get("source"))
	assert.Equal(t, "o-1", h.Get("order_id_1"))
	for _, k := range []string{"user-id", "AMQ_SCHEDULED_DELAY", "sinkbus_name", "sinkbus_attempt"} {
		_, ok := h.Contains(k)
		assert.False(t, ok, "header %s", k)
	}
	assert.Len(t, h.GetAll(frame.Receipt), 0, "the server strips the one receipt header")
	assert.Equal(t, string(sinks.AppendEnvelope(nil, msg)), string(f.Body))

	env, err := sinks.EnvelopeOf(msg)
	require.NoError(t, err)
	assert.Equal(t, "x/y", env.Metadata["content-type"], "the envelope keeps every metadata key")
}

func TestStompSink_destination_option_routes_by_topic(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	rec := startServer(t, ln, nil)
	p := newSink(t, stomp.Config{Addresses: []string{ln.Addr().String()}, Destination: "/queue/default"},
		sinks.Env{}, stomp.WithDestination(func(topic string, _ *message.Message) string {
			if topic == "" {
				return ""
			}
			return "/queue/" + topic
		}))
	require.NoError(t, p.Publish("orders", event("order.created", "", `{}`)))
	assert.Equal(t, "/queue/orders", rec.next(t).Header.Get(frame.Destination))
	require.NoError(t, p.Publish("", event("order.created", "", `{}`)))
	assert.Equal(t, "/queue/default", rec.next(t).Header.Get(frame.Destination))
}

func TestStompSink_publish_returns_only_after_receipt(t *testing.T) {
	b := newFakeBroker(t)
	b.onSend = func(int, *frame.Frame) sendAction { return holdReceipt }
	p := newSink(t, stomp.Config{Addresses: []string{b.addr()}, Destination: "/queue/q", HeartBeatReceive: -1}, sinks.Env{})

	res := make(chan error, 1)
	go func() { res <- p.Publish("", event("order.created", "", `{}`)) }()
	s := b.nextSend(t)
	_, asked := s.frame.Header.Contains(frame.Receipt)
	assert.True(t, asked, "every SEND asks for a receipt")
	select {
	case err := <-res:
		t.Fatalf("Publish returned %v before the receipt", err)
	default:
	}
	b.release()
	require.NoError(t, recvErr(t, res))
}

func TestStompSink_context_cancel_returns_ctx_error(t *testing.T) {
	b := newFakeBroker(t)
	b.onSend = func(int, *frame.Frame) sendAction { return holdReceipt }
	p := newSink(t, stomp.Config{Addresses: []string{b.addr()}, Destination: "/queue/q", HeartBeatReceive: -1}, sinks.Env{})

	ctx, cancel := context.WithCancel(context.Background())
	msg := event("order.created", "", `{}`)
	msg.SetContext(ctx)
	res := make(chan error, 1)
	go func() { res <- p.Publish("", msg) }()
	b.nextSend(t)
	cancel()
	err := recvErr(t, res)
	require.ErrorIs(t, err, context.Canceled)
	class, _ := sinks.Classify(err)
	assert.Equal(t, sinks.ClassRetryable, class)
	b.release()
}

func TestStompSink_receipt_timeout_is_retryable_and_redials(t *testing.T) {
	b := newFakeBroker(t)
	b.onSend = func(n int, _ *frame.Frame) sendAction {
		if n == 1 {
			return holdReceipt // the first connection never answers
		}
		return receipt
	}
	clk := clock.NewFake(time.Time{})
	disconnected := make(chan error, 1)
	p := newSink(t, stomp.Config{
		Addresses: []string{b.addr()}, Destination: "/queue/q", Connections: 1,
		ReceiptTimeout: sinks.Duration(3 * time.Second), HeartBeatReceive: -1,
	}, sinks.Env{Clock: clk}, stomp.OnDisconnect(func(_ string, err error) { disconnected <- err }))

	res := make(chan error, 1)
	go func() { res <- p.Publish("", event("order.created", "", `{}`)) }()
	b.nextSend(t)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	require.NoError(t, clk.BlockUntil(ctx, 1))
	d, _ := clk.NextDue()
	assert.Equal(t, 3*time.Second, d)
	clk.Advance(3 * time.Second)

	err := recvErr(t, res)
	require.ErrorIs(t, err, stomp.ErrReceiptTimeout)
	class, _ := sinks.Classify(err)
	assert.Equal(t, sinks.ClassRetryable, class)
	assert.Contains(t, err.Error(), "/queue/q")
	require.ErrorIs(t, recvErr(t, disconnected), stomp.ErrReceiptTimeout)

	require.NoError(t, p.Publish("", event("order.created", "", `{}`)), "a new connection takes the retry")
	assert.Equal(t, int32(2), b.connects.Load())
}

func TestStompSink_dropped_connection_fails_retryably_then_recovers(t *testing.T) {
	b := newFakeBroker(t)
	b.onSend = func(n int, _ *frame.Frame) sendAction {
		if n == 1 {
			return dropConn
		}
		return receipt
	}
	connected := make(chan string, 10)
	p := newSink(t, stomp.Config{Addresses: []string{b.addr()}, Destination: "/queue/q", Connections: 1, HeartBeatReceive: -1},
		sinks.Env{}, stomp.OnConnect(func(addr string) { connected <- addr }))

	err := p.Publish("", event("order.created", "", `{}`))
	require.ErrorIs(t, err, stomp.ErrConnectionLost)
	class, _ := sinks.Classify(err)
	assert.Equal(t, sinks.ClassRetryable, class)

	msg := event("order.created", "", `{}`)
	require.NoError(t, publishRetrying(context.Background(), p, msg))
	assert.Equal(t, "stomp://"+b.addr(), <-connected)
	assert.Equal(t, "stomp://"+b.addr(), <-connected, "redialled")
}

func TestStompSink_idle_connection_drop_is_redialled_without_publish(t *testing.T) {
	b := newFakeBroker(t)
	clk := clock.NewFake(time.Time{})
	connected := make(chan string, 10)
	disconnected := make(chan error, 10)
	newSink(t, stomp.Config{Addresses: []string{b.addr()}, Destination: "/queue/q", Connections: 1, HeartBeatReceive: -1},
		sinks.Env{Clock: clk}, stomp.OnConnect(func(addr string) { connected <- addr }),
		stomp.OnDisconnect(func(_ string, err error) { disconnected <- err }))
	recvAddr(t, connected)
	clk.Advance(time.Minute) // it lived long: redialled at once
	b.dropAll()
	require.ErrorIs(t, recvErr(t, disconnected), stomp.ErrConnectionLost)
	assert.Equal(t, "stomp://"+b.addr(), recvAddr(t, connected), "without any Publish")
}

func TestStompSink_concurrent_publishes_spread_over_connections(t *testing.T) {
	b := newFakeBroker(t)
	b.onSend = func(int, *frame.Frame) sendAction { return holdReceipt }
	p := newSink(t, stomp.Config{Addresses: []string{b.addr()}, Destination: "/queue/q", Connections: 3, HeartBeatReceive: -1}, sinks.Env{})

	res := make(chan error, 3)
	for i := 0; i < 3; i++ {
		go func() { res <- p.Publish("", event("order.created", "", `{}`)) }()
	}
	// A connection carries one send until its receipt: three sends in flight
	// at once are on three connections.
	conns := map[int]bool{}
	for i := 0; i < 3; i++ {
		conns[b.nextSend(t).conn] = true
	}
	assert.Len(t, conns, 3)
	b.release()
	for i := 0; i < 3; i++ {
		require.NoError(t, recvErr(t, res))
	}
}

func TestStompSink_connections_default_to_concurrency_at_most_4(t *testing.T) {
	for _, tc := range []struct{ concurrency, want int }{{1, 1}, {2, 2}, {16, 4}} {
		t.Run(fmt.Sprint(tc.concurrency), func(t *testing.T) {
			b := newFakeBroker(t)
			connected := make(chan string, 100)
			p, err := stomp.New(stomp.Config{Addresses: []string{b.addr()}, Destination: "/queue/q", HeartBeatReceive: -1, AllowPrivateNetworks: true},
				sinks.Env{Concurrency: tc.concurrency}, stomp.OnConnect(func(a string) { connected <- a }))
			require.NoError(t, err)
			for i := 0; i < tc.want; i++ {
				<-connected
			}
			require.NoError(t, p.Close())
			assert.Equal(t, int32(tc.want), b.connects.Load())
			assert.Equal(t, int32(tc.want), b.disconnects.Load(), "Close sends DISCONNECT on each")
		})
	}
}

func TestStompSink_close_is_idempotent_and_refuses_publish(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	startServer(t, ln, nil)
	p, err := stomp.New(stomp.Config{Addresses: []string{ln.Addr().String()}, Destination: "/queue/q", AllowPrivateNetworks: true}, sinks.Env{})
	require.NoError(t, err)
	require.NoError(t, p.Publish("", event("order.created", "", `{}`)))
	require.NoError(t, p.Close())
	require.NoError(t, p.Close())
	require.ErrorIs(t, p.Publish("", event("order.created", "", `{}`)), sinks.ErrClosed)
}

func TestStompSink_close_waits_for_send_in_flight(t *testing.T) {
	b := newFakeBroker(t)
	b.onSend = func(int, *frame.Frame) sendAction { return holdReceipt }
	p, err := stomp.New(stomp.Config{Addresses: []string{b.addr()}, Destination: "/queue/q", Connections: 1, HeartBeatReceive: -1, AllowPrivateNetworks: true}, sinks.Env{})
	require.NoError(t, err)
	res := make(chan error, 1)
	go func() { res <- p.Publish("", event("order.created", "", `{}`)) }()
	b.nextSend(t)
	// The only connection is busy: a second Publish waits until Close begins.
	second := make(chan error, 1)
	go func() { second <- p.Publish("", event("order.created", "", `{}`)) }()
	closed := make(chan error, 1)
	go func() { closed <- p.Close() }()
	require.ErrorIs(t, recvErr(t, second), sinks.ErrClosed)
	select {
	case <-closed:
		t.Fatal("Close returned while a send waited for its receipt")
	default:
	}
	b.release()
	require.NoError(t, recvErr(t, res), "the send in flight finishes")
	require.NoError(t, recvErr(t, closed))
}

func TestStompSink_fails_over_to_next_address(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	rec := startServer(t, ln, nil)
	down := closedAddr(t)
	dialErrs := make(chan string, 10)
	p := newSink(t, stomp.Config{
		Addresses:   []string{fmt.Sprintf("failover:(tcp://%s,stomp://%s)", down, ln.Addr())},
		Destination: "/queue/q", Connections: 1,
	}, sinks.Env{}, stomp.OnDialError(func(addr string, _ error) { dialErrs <- addr }))
	require.NoError(t, p.Publish("", event("order.created", "", `{}`)))
	rec.next(t)
	assert.Equal(t, "stomp://"+down, <-dialErrs)
}

func TestStompSink_reconnect_waits_after_each_failed_round(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	a, b := closedAddr(t), closedAddr(t)
	dialErrs := make(chan string, 10)
	p := newSink(t, stomp.Config{
		Addresses: []string{a, b}, Destination: "/queue/q", Connections: 1,
		ReconnectWait: sinks.Duration(2 * time.Second), ReconnectJitter: -1,
	}, sinks.Env{Clock: clk}, stomp.OnDialError(func(addr string, _ error) { dialErrs <- addr }))

	assert.Equal(t, "stomp://"+a, <-dialErrs)
	assert.Equal(t, "stomp://"+b, <-dialErrs)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	require.NoError(t, clk.BlockUntil(ctx, 1))
	d, _ := clk.NextDue()
	assert.Equal(t, 2*time.Second, d)

	err := p.Publish("", event("order.created", "", `{}`))
	require.ErrorIs(t, err, stomp.ErrNotConnected, "no connection: fail fast")
	assert.Contains(t, err.Error(), "connection refused")
	class, _ := sinks.Classify(err)
	assert.Equal(t, sinks.ClassRetryable, class)

	select {
	case addr := <-dialErrs:
		t.Fatalf("dialled %s before the wait was over", addr)
	default:
	}
	clk.Advance(2 * time.Second)
	assert.Equal(t, "stomp://"+a, <-dialErrs)
	assert.Equal(t, "stomp://"+b, <-dialErrs)
}

func TestStompSink_max_reconnects_stops_until_publish(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	down := closedAddr(t)
	dialErrs := make(chan string, 10)
	p := newSink(t, stomp.Config{
		Addresses: []string{down}, Destination: "/queue/q", Connections: 1,
		MaxReconnects: 2, ReconnectJitter: -1,
	}, sinks.Env{Clock: clk}, stomp.OnDialError(func(addr string, _ error) { dialErrs <- addr }))

	<-dialErrs
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	require.NoError(t, clk.BlockUntil(ctx, 1))
	clk.Advance(time.Second)
	<-dialErrs
	// Gave up after two: the next attempt needs no clock, only a Publish.
	require.ErrorIs(t, p.Publish("", event("order.created", "", `{}`)), stomp.ErrNotConnected)
	<-dialErrs
}

func TestStompSink_logs_through_env_logger(t *testing.T) {
	b := newFakeBroker(t)
	b.errReply = brokerError("Processing error", "boom")
	b.onSend = func(int, *frame.Frame) sendAction { return errorFrame }
	logs := watermill.NewCaptureLogger()
	p := newSink(t, stomp.Config{Addresses: []string{b.addr()}, Destination: "/queue/q", Connections: 1, HeartBeatReceive: -1},
		sinks.Env{Logger: logs, IntegrationID: "int-1"})
	err := p.Publish("", event("order.created", "", `{}`))
	require.Error(t, err)

	var found bool
	for _, m := range logs.Captured()[watermill.ErrorLogLevel] {
		if m.Msg == "received ERROR; Closing underlying connection" {
			found = true
		}
	}
	assert.True(t, found, "go-stomp's own log line goes to env.Logger: %v", logs.Captured())
}

func TestStompSink_new_rejects_invalid_config(t *testing.T) {
	_, err := stomp.New(stomp.Config{Addresses: []string{"http://x"}}, sinks.Env{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `addresses[0]: unsupported scheme "http"`)
	assert.Contains(t, err.Error(), "destination: required")

	var fe *field.Error
	_, err = stomp.New(stomp.Config{Addresses: []string{"stomp+ssl://h"}, Destination: "/q",
		TLS: stomp.TLS{CAFile: t.TempDir() + "/missing.pem"}}, sinks.Env{})
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, "tls.ca_file", fe.Field)
}

func TestStompSink_publish_error_hides_password(t *testing.T) {
	b := newFakeBroker(t)
	b.onConnect = func(int, *frame.Frame) *frame.Frame {
		return brokerError("Bad CONNECT", "Access refused for user 'user1'")
	}
	p := newSink(t, stomp.Config{Addresses: []string{b.addr()}, Destination: "/queue/q", Username: "user1",
		Password: "s3cr3t-passcode"}, sinks.Env{})
	err := p.Publish("", event("order.created", "", `{}`))
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "s3cr3t")
	assert.True(t, errors.Is(err, sinks.ErrPermanent))
}

// A broker that refuses the credentials is a permanent failure even when an
// address after it cannot be reached (an Amazon MQ standby).
func TestStompSink_refusal_stays_permanent_past_an_unreachable_standby(t *testing.T) {
	b := newFakeBroker(t)
	b.onConnect = func(int, *frame.Frame) *frame.Frame {
		return brokerError("Bad CONNECT", "Access refused for user 'user1'")
	}
	p := newSink(t, stomp.Config{Addresses: []string{b.addr(), closedAddr(t)}, Destination: "/queue/q",
		Username: "user1", Password: "wrong", Connections: 1}, sinks.Env{})
	err := p.Publish("", event("order.created", "", `{}`))
	require.Error(t, err)
	assert.ErrorIs(t, err, sinks.ErrPermanent, "%v", err)
	assert.Contains(t, err.Error(), "Access refused")
}

// A refusal counts only until a broker takes the credentials: one that
// accepts them and then drops at once (dies young) is a retryable failure,
// whatever an earlier address said.
func TestStompSink_refusal_is_forgotten_once_a_broker_accepts(t *testing.T) {
	refusing, flaky := newFakeBroker(t), newFakeBroker(t)
	refusing.onConnect = func(int, *frame.Frame) *frame.Frame {
		return brokerError("Bad CONNECT", "Access refused for user 'user1'")
	}
	flaky.dropAfterConnect = func(int) bool { return true }
	p := newSink(t, stomp.Config{Addresses: []string{refusing.addr(), flaky.addr()}, Destination: "/queue/q",
		Username: "user1", Password: "pass", Connections: 1}, sinks.Env{})
	// The first round ends with the drop; a Publish during the pause that
	// follows fails with what the round found.
	require.Eventually(t, func() bool { return flaky.connects.Load() >= 1 }, 10*time.Second, time.Millisecond)
	time.Sleep(50 * time.Millisecond) // the drop is seen
	err := p.Publish("", event("order.created", "", `{}`))
	require.Error(t, err)
	assert.NotErrorIs(t, err, sinks.ErrPermanent, "%v", err)
}
