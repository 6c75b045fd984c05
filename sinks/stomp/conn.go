package stomp

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-stomp/stomp/v3"
	"github.com/go-stomp/stomp/v3/frame"

	"github.com/sinkbus/sinkbus/internal/clock"
	"github.com/sinkbus/sinkbus/netguard"
)

// conn is one STOMP connection of the pool.
type conn struct {
	addr string // Address.String()
	raw  net.Conn
	sc   *stomp.Conn
	once sync.Once
	dead chan struct{} // closed once raw is closed, by whoever closed it
}

// kill closes the network connection. go-stomp then fails what waits on it
// and stops its goroutines.
func (c *conn) kill() {
	c.once.Do(func() {
		_ = c.raw.Close()
		close(c.dead)
	})
}

// watchedConn is what go-stomp gets: its Close (on an ERROR frame, a read
// error, a missed heart-beat) is seen through conn.dead, so that an idle
// connection that died is redialled at once rather than at the next send.
type watchedConn struct {
	net.Conn
	c *conn
}

func (w watchedConn) Close() error {
	w.c.kill()
	return nil
}

// dial connects to a, TLS and CONNECT included, within the connect timeout
// on env.Clock (so that tests move it).
func (p *Publisher) dial(a Address) (*conn, error) {
	ctx, cancel := context.WithCancelCause(p.ctx)
	defer cancel(nil)
	t := p.env.Clock.NewTimer(p.cfg.ConnectTimeout.D())
	defer t.Stop()
	go func() {
		select {
		case <-t.C():
			cancel(ErrConnectTimeout)
		case <-ctx.Done():
		}
	}()
	fail := func(err error) (*conn, error) {
		if errors.Is(context.Cause(ctx), ErrConnectTimeout) {
			err = ErrConnectTimeout
		}
		return nil, connectError(a.String(), err)
	}
	nd := netguard.Guard(&net.Dialer{}, p.cfg.AllowPrivateNetworks)
	var raw net.Conn
	var err error
	if a.TLS {
		cfg := p.tls.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName = a.Host
		}
		raw, err = (&tls.Dialer{NetDialer: nd, Config: cfg}).DialContext(ctx, "tcp", a.HostPort())
	} else {
		raw, err = nd.DialContext(ctx, "tcp", a.HostPort())
	}
	if err != nil {
		return fail(err)
	}
	c := &conn{addr: a.String(), raw: raw, dead: make(chan struct{})}
	stop := context.AfterFunc(ctx, c.kill) // Close or the timeout cut the handshake
	sc, err := stomp.Connect(watchedConn{Conn: raw, c: c}, p.connOpts...)
	if !stop() && err == nil {
		err = ctx.Err()
	}
	if err != nil {
		c.kill()
		return fail(err)
	}
	c.sc = sc
	return c, nil
}

// serve hands requests to c until c dies (returning why) or Close (nil).
func (p *Publisher) serve(c *conn) error {
	for {
		select {
		case <-p.ctx.Done():
			p.disconnect(c)
			return nil
		case <-c.dead:
			return ErrConnectionLost
		case req := <-p.reqs:
			select {
			case <-c.dead: // died while idle: another connection takes it
				req.done <- errNotSent
				return ErrConnectionLost
			default:
			}
			if err := req.ctx.Err(); err != nil { // the caller is gone
				req.done <- err
				continue
			}
			err := p.send(c, req)
			req.done <- err
			switch {
			case err == errNotSent:
				return ErrConnectionLost
			case err != nil:
				return err
			}
		}
	}
}

// send SENDs req on c with a receipt request and waits for the receipt, at
// most the receipt timeout. Any failure leaves c broken: go-stomp closes the
// connection on an ERROR frame, and a missing receipt means it cannot be
// trusted.
func (p *Publisher) send(c *conn, req *request) error {
	var timedOut atomic.Bool
	cut := func() {
		timedOut.Store(true)
		c.kill()
	}
	stop := p.afterFunc(p.cfg.ReceiptTimeout.D(), cut)
	serr := c.sc.Send(req.dest, ContentType, req.body, stomp.SendOpt.Receipt, func(f *frame.Frame) error {
		setHeaders(req.ctx, f, req.msg)
		return nil
	})
	stop()
	switch {
	case serr == nil:
		return nil
	case timedOut.Load():
		return &Error{Op: "send", Address: c.addr, Destination: req.dest, Err: ErrReceiptTimeout}
	}
	e, sent := sendError(req.dest, c.addr, serr)
	if !sent {
		return errNotSent
	}
	return e
}

// afterFunc calls f in its own goroutine after d on env.Clock, unless stop
// is called first. On the wall clock it is time.AfterFunc: no goroutine
// waits per send, which a loaded machine notices at thousands of sends a
// second.
func (p *Publisher) afterFunc(d time.Duration, f func()) (stop func()) {
	if _, real := p.env.Clock.(clock.Real); real {
		t := time.AfterFunc(d, f)
		return func() { t.Stop() }
	}
	t := p.env.Clock.NewTimer(d)
	done := make(chan struct{})
	var once sync.Once
	go func() {
		select {
		case <-t.C():
			f()
		case <-done:
		}
	}()
	return func() {
		once.Do(func() {
			t.Stop()
			close(done)
		})
	}
}

// disconnect sends DISCONNECT and waits for its receipt, or for the
// connection to die first: go-stomp would wait out its own timeout when the
// connection died as DISCONNECT left.
func (p *Publisher) disconnect(c *conn) {
	done := make(chan struct{})
	go func() {
		_ = c.sc.Disconnect()
		close(done)
	}()
	select {
	case <-done:
	case <-c.dead:
	}
	c.kill()
}
