package stomp_test

import (
	"context"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	gostomp "github.com/go-stomp/stomp/v3"
	"github.com/go-stomp/stomp/v3/frame"
	"github.com/go-stomp/stomp/v3/server"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/internal/testenv"
	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/stomp"
)

// wait bounds every wait of a test for something that should happen at once.
const wait = 10 * time.Second

// nopLogger silences go-stomp's own logging in the test servers and clients.
type nopLogger struct{}

func (nopLogger) Debugf(string, ...any)   {}
func (nopLogger) Infof(string, ...any)    {}
func (nopLogger) Warningf(string, ...any) {}
func (nopLogger) Errorf(string, ...any)   {}
func (nopLogger) Debug(string)            {}
func (nopLogger) Info(string)             {}
func (nopLogger) Warning(string)          {}
func (nopLogger) Error(string)            {}

// recorder is a server.QueueStorage that records what the in-process server
// enqueues, and never delivers it.
type recorder struct{ frames chan *frame.Frame }

func (r *recorder) Enqueue(_ string, f *frame.Frame) error {
	r.frames <- f.Clone()
	return nil
}
func (r *recorder) Requeue(string, *frame.Frame) error   { return nil }
func (r *recorder) Dequeue(string) (*frame.Frame, error) { return nil, nil }
func (r *recorder) Start()                               {}
func (r *recorder) Stop()                                {}
func (r *recorder) next(t *testing.T) *frame.Frame {
	t.Helper()
	select {
	case f := <-r.frames:
		return f
	case <-time.After(wait):
		t.Fatal("the server received no SEND")
		return nil
	}
}

type auth struct{ login, passcode string }

func (a auth) Authenticate(login, passcode string) bool {
	return login == a.login && passcode == a.passcode
}

// startServer runs go-stomp's in-process server on a loopback port; only its
// SEND and receipt paths are used (its ACK and UNSUBSCRIBE misbehave).
func startServer(t *testing.T, ln net.Listener, a server.Authenticator) *recorder {
	t.Helper()
	if ln == nil {
		var err error
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
	}
	t.Cleanup(func() { ln.Close() })
	rec := &recorder{frames: make(chan *frame.Frame, 1000)}
	srv := &server.Server{Authenticator: a, QueueStorage: rec, Log: nopLogger{}, HeartBeat: time.Minute}
	go func() { _ = srv.Serve(ln) }()
	return rec
}

// silentBroker accepts connections and reads what comes, but never answers:
// a broker that hangs, or a port that is not STOMP. It returns its address.
func silentBroker(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(io.Discard, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// closedAddr returns a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// fakeBroker speaks just enough STOMP to script a broker's answers: what it
// replies to CONNECT and to each SEND.
type fakeBroker struct {
	ln net.Listener
	// onConnect returns the reply to the n-th CONNECT (1, 2, ...); nil
	// means CONNECTED.
	onConnect func(n int, f *frame.Frame) *frame.Frame
	// onSend decides the fate of a SEND on connection n.
	onSend func(n int, f *frame.Frame) sendAction
	// errReply is the ERROR frame of the errorFrame action.
	errReply *frame.Frame
	// dropAfterConnect, when it returns true for the n-th CONNECT, closes the
	// connection right after CONNECTED, as a broker in trouble may.
	dropAfterConnect func(n int) bool

	connectFrames chan *frame.Frame // every CONNECT received
	connects      atomic.Int32
	disconnects   atomic.Int32
	sends         chan sentFrame
	mu            sync.Mutex
	held          []func() // receipts held back by holdReceipt
	open          []net.Conn
}

type sentFrame struct {
	conn  int
	frame *frame.Frame
}

type sendAction int

const (
	receipt     sendAction = iota // answer RECEIPT
	holdReceipt                   // keep the receipt until release
	dropConn                      // close the connection without a word
	errorFrame                    // answer errReply
)

func newFakeBroker(t *testing.T) *fakeBroker {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	b := &fakeBroker{ln: ln, sends: make(chan sentFrame, 1000), connectFrames: make(chan *frame.Frame, 100000)}
	t.Cleanup(func() { ln.Close() })
	go b.accept()
	return b
}

func (b *fakeBroker) addr() string { return b.ln.Addr().String() }

func (b *fakeBroker) accept() {
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		b.mu.Lock()
		b.open = append(b.open, c)
		b.mu.Unlock()
		go b.serve(c)
	}
}

// dropAll closes every connection, as a broker that goes away does.
func (b *fakeBroker) dropAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.open {
		c.Close()
	}
	b.open = nil
}

func brokerError(message, body string) *frame.Frame {
	f := frame.New(frame.ERROR, frame.Message, message, frame.ContentType, "text/plain")
	f.Body = []byte(body)
	return f
}

func (b *fakeBroker) serve(c net.Conn) {
	defer c.Close()
	r, w := frame.NewReader(c), frame.NewWriter(c)
	var wmu sync.Mutex
	write := func(f *frame.Frame) {
		wmu.Lock()
		defer wmu.Unlock()
		_ = w.Write(f)
	}
	f, err := r.Read()
	if err != nil || f == nil {
		return
	}
	n := int(b.connects.Add(1))
	select {
	case b.connectFrames <- f:
	default:
	}
	var reply *frame.Frame
	if b.onConnect != nil {
		reply = b.onConnect(n, f)
	}
	if reply != nil {
		write(reply)
		return
	}
	write(frame.New(frame.CONNECTED, frame.Version, "1.2", frame.HeartBeat, "0,0", frame.Server, "fake/1"))
	if b.dropAfterConnect != nil && b.dropAfterConnect(n) {
		return
	}
	for {
		f, err := r.Read()
		if err != nil {
			return
		}
		if f == nil {
			continue
		}
		switch f.Command {
		case frame.DISCONNECT:
			b.disconnects.Add(1)
			write(frame.New(frame.RECEIPT, frame.ReceiptId, f.Header.Get(frame.Receipt)))
			return
		case frame.SEND:
			action := receipt
			if b.onSend != nil {
				action = b.onSend(n, f)
			}
			rcpt := frame.New(frame.RECEIPT, frame.ReceiptId, f.Header.Get(frame.Receipt))
			if action == holdReceipt { // held before the test hears of the SEND
				b.mu.Lock()
				b.held = append(b.held, func() { write(rcpt) })
				b.mu.Unlock()
			}
			b.sends <- sentFrame{conn: n, frame: f}
			switch action {
			case receipt:
				write(rcpt)
			case dropConn:
				return
			case errorFrame:
				write(b.errReply)
				return
			}
		}
	}
}

// release sends the receipts held back so far.
func (b *fakeBroker) release() {
	b.mu.Lock()
	held := b.held
	b.held = nil
	b.mu.Unlock()
	for _, f := range held {
		f()
	}
}

func (b *fakeBroker) nextSend(t *testing.T) sentFrame {
	t.Helper()
	select {
	case s := <-b.sends:
		return s
	case <-time.After(wait):
		t.Fatal("the broker received no SEND")
		return sentFrame{}
	}
}

// newSink builds a sink for tests and closes it at the end.
func newSink(t *testing.T, cfg stomp.Config, env sinks.Env, opts ...stomp.Option) *stomp.Publisher {
	t.Helper()
	cfg.AllowPrivateNetworks = true // the test brokers listen on loopback
	p, err := stomp.New(cfg, env, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// event is a message as the bus hands it to a sink.
func event(name, tenant, payload string) *message.Message {
	msg := message.NewMessage(watermill.NewULID(), []byte(payload))
	msg.Metadata.Set(sinks.MetaName, name)
	if tenant != "" {
		msg.Metadata.Set(sinks.MetaTenant, tenant)
	}
	msg.Metadata.Set(sinks.MetaPublishedAt, "2026-11-22T10:00:00.000000001Z")
	msg.Metadata.Set(sinks.MetaAttempt, "1")
	return msg
}

// recvErr waits for the result of a Publish running in a goroutine.
func recvErr(t *testing.T, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(wait):
		t.Fatal("Publish did not return")
		return nil
	}
}

// broker is a real STOMP broker from the environment.
type broker struct {
	name, addr, user, pass string
}

func rabbitMQ(t testing.TB) broker {
	return broker{
		name: "rabbitmq",
		addr: testenv.Server(t, "SINKBUS_STOMP_RABBITMQ"),
		user: os.Getenv("SINKBUS_STOMP_RABBITMQ_USER"),
		pass: os.Getenv("SINKBUS_STOMP_RABBITMQ_PASS"),
	}
}

func activeMQ(t testing.TB) broker {
	return broker{
		name: "activemq",
		addr: testenv.Server(t, "SINKBUS_STOMP_ACTIVEMQ"),
		user: os.Getenv("SINKBUS_STOMP_ACTIVEMQ_USER"),
		pass: os.Getenv("SINKBUS_STOMP_ACTIVEMQ_PASS"),
	}
}

func (b broker) config(dest string) stomp.Config {
	return stomp.Config{Addresses: []string{"stomp://" + b.addr}, Destination: dest, Username: b.user, Password: b.pass, AllowPrivateNetworks: true}
}

// dial opens a plain go-stomp connection to b, for reading back.
func (b broker) dial(t testing.TB) *gostomp.Conn {
	t.Helper()
	c, err := gostomp.Dial("tcp", b.addr,
		gostomp.ConnOpt.Host("/"), gostomp.ConnOpt.Login(b.user, b.pass),
		gostomp.ConnOpt.Logger(nopLogger{}))
	require.NoError(t, err)
	return c
}

// subscribe reads dest from b with ack:auto until the test ends.
func (b broker) subscribe(t *testing.T, dest string) <-chan *gostomp.Message {
	t.Helper()
	c := b.dial(t)
	sub, err := c.Subscribe(dest, gostomp.AckAuto)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.MustDisconnect() })
	// go-stomp hands MESSAGE frames to sub.C on its only reader goroutine:
	// drained at once, a full queue cannot hold up the receipt below.
	out := make(chan *gostomp.Message, 100000)
	go func() {
		defer close(out)
		for m := range sub.C {
			out <- m
		}
	}()
	// A receipt for a throw-away SEND on the same connection proves the
	// SUBSCRIBE before it was processed.
	require.NoError(t, c.Send("/topic/sinkbus-test.sync", "text/plain", nil, gostomp.SendOpt.Receipt))
	return out
}

// testDest returns a fresh queue of the test; RabbitMQ expires idle
// sinkbus-test.* queues (scripts/servers/rabbitmq.sh).
func testDest() string { return "/queue/sinkbus-test." + watermill.NewShortUUID() }

// publishRetrying publishes msg as the retry middleware would: again after
// each retryable failure, until it succeeds or ctx ends.
func publishRetrying(ctx context.Context, p message.Publisher, msg *message.Message) error {
	for {
		err := p.Publish("", msg)
		if err == nil {
			return nil
		}
		if c, _ := sinks.Classify(err); c == sinks.ClassPermanent {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(20 * time.Millisecond):
		}
	}
}
