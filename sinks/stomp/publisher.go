package stomp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/go-stomp/stomp/v3"

	"github.com/sinkbus/sinkbus/field"
	"github.com/sinkbus/sinkbus/internal/clock"
	"github.com/sinkbus/sinkbus/sinks"
)

const (
	// disconnectTimeout bounds the wait for the receipt of a DISCONNECT.
	disconnectTimeout = 5 * time.Second
	// receiptBackstop is how long after the receipt timeout go-stomp gives up
	// on a receipt by itself.
	receiptBackstop = 5 * time.Second
	// heartBeatGrace multiplies go-stomp's read timeout (the broker's
	// heart-beat interval plus 5 s). At 1 it cuts idle ActiveMQ connections:
	// ActiveMQ sends heart-beats up to twice the interval apart.
	heartBeatGrace = 2
)

// Publisher is the STOMP sink: a message.Publisher that SENDs each event's
// envelope to the destination over a pool of connections, and returns nil
// only once the broker's receipt for that SEND arrived. Safe for concurrent
// use; concurrent Publish calls go over different connections.
type Publisher struct {
	cfg      Config
	addrs    []Address
	env      sinks.Env
	log      watermill.LoggerAdapter
	trouble  *brokerLog
	opts     Options
	tls      *tls.Config
	connOpts []func(*stomp.Conn) error

	reqs      chan *request
	ctx       context.Context // done once Close began: ends dials, waits and serving
	cancel    context.CancelFunc
	closeOnce sync.Once
	wg        sync.WaitGroup

	mu        sync.Mutex
	up        int            // connections serving
	lastErr   error          // last connect failure since a connect succeeded
	changed   chan struct{}  // closed and replaced when up or lastErr change
	wake      chan struct{}  // closed and replaced to wake connections that gave up
	parked    int            // connections that gave up (MaxReconnects)
	wokeAt    time.Time      // when Publish last woke them
	preferred int            // index of the address that last connected
	live      map[*conn]bool // for Close to cut what does not end in time
}

// request is one event on its way to a connection.
type request struct {
	ctx  context.Context
	dest string
	msg  *message.Message
	body []byte
	done chan error // buffered: the connection never waits for the caller
}

// errNotSent is a connection's answer for a request it handed back without
// writing anything, because the connection had just died.
var errNotSent = errors.New("sinkbus: stomp: not sent")

// New validates c and starts the sink's connections in the background. It
// does not wait for them: a broker that is down when the sink starts makes
// Publish fail (retryably) until one connection is up.
func New(c Config, env sinks.Env, opts ...Option) (*Publisher, error) {
	env = env.Defaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	c.setDefaults(env.Concurrency)
	addrs, _ := ParseAddresses(c.Addresses) // Validate checked them
	c.Addresses = append([]string(nil), c.Addresses...)

	var o Options
	for _, opt := range opts {
		opt(&o)
	}
	tlsCfg, err := tlsConfig(c.TLS, o.TLSConfig, env)
	if err != nil {
		return nil, err
	}
	log := env.Logger.With(watermill.LogFields{"sink": "stomp"})

	ctx, cancel := context.WithCancel(context.Background())
	p := &Publisher{
		cfg:     c,
		addrs:   addrs,
		env:     env,
		log:     log,
		trouble: newBrokerLog(env.Log, env.Clock),
		opts:    o,
		tls:     tlsCfg,
		reqs:    make(chan *request),
		ctx:     ctx,
		cancel:  cancel,
		changed: make(chan struct{}),
		wake:    make(chan struct{}),
		live:    make(map[*conn]bool),
	}
	p.connOpts = []func(*stomp.Conn) error{
		stomp.ConnOpt.Host(c.VHost),
		stomp.ConnOpt.HeartBeat(max(c.HeartBeatSend.D(), 0), max(c.HeartBeatReceive.D(), 0)),
		stomp.ConnOpt.HeartBeatGracePeriodMultiplier(heartBeatGrace),
		// The sink times receipts itself, on env.Clock, and cuts the
		// connection at its timeout, which fails the send: go-stomp's own
		// timeout would leave its reader stuck on a receipt that comes late.
		// go-stomp's comes later, as a backstop for a send that raced an
		// ERROR frame (its reader gone, a cut connection cannot end it).
		stomp.ConnOpt.RcvReceiptTimeout(c.ReceiptTimeout.D() + receiptBackstop),
		stomp.ConnOpt.DisconnectReceiptTimeout(min(c.ReceiptTimeout.D(), disconnectTimeout)),
		stomp.ConnOpt.Logger(stompLogger{log}),
	}
	if c.Username != "" || c.Password != "" {
		p.connOpts = append(p.connOpts, stomp.ConnOpt.Login(c.Username, c.Password))
	}
	p.wg.Add(c.Connections)
	for i := 0; i < c.Connections; i++ {
		go p.run(i)
	}
	return p, nil
}

func tlsConfig(t TLS, base *tls.Config, env sinks.Env) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if base != nil {
		cfg = base.Clone()
	}
	if t.ServerName != "" {
		cfg.ServerName = t.ServerName
	}
	if t.InsecureSkipVerify {
		cfg.InsecureSkipVerify = true
	}
	if t.CAFile != "" {
		pem, err := readCAFile(env.Path(t.CAFile))
		if err != nil {
			// The cause (missing, a directory, a pipe, too large) goes to
			// the application's log only: the answer to whoever configured
			// the path must not tell which paths exist on the host.
			env.Logger.Error("Cannot read the STOMP CA file", err, watermill.LogFields{"integration_id": env.IntegrationID})
			return nil, field.New("tls.ca_file", "must be a readable regular file of at most %d bytes", MaxCAFile)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, field.New("tls.ca_file", "holds no PEM certificate")
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// MaxCAFile is the largest tls.ca_file read: a bundle of every public root
// is about 200 KiB.
const MaxCAFile = 1 << 20

// readCAFile reads the regular file path, at most MaxCAFile bytes. It opens
// without blocking, so that a named pipe fails at once instead of waiting
// for a writer, and reads nothing but a regular file (not /dev/zero).
func readCAFile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxCAFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxCAFile {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, MaxCAFile)
	}
	return data, nil
}

// Publish sends msgs in order, each to the destination, and returns at the
// first failure. A nil return means the broker gave a receipt for every
// one. Each send is bound to its message's context: when it ends first,
// Publish returns its error, though the send may still reach the broker
// (at-least-once). The topic is ignored unless Options.Destination uses it.
func (p *Publisher) Publish(topic string, msgs ...*message.Message) error {
	for _, msg := range msgs {
		if err := p.publish(topic, msg); err != nil {
			return err
		}
	}
	return nil
}

func (p *Publisher) publish(topic string, msg *message.Message) error {
	if p.ctx.Err() != nil {
		return sinks.ErrClosed
	}
	req := &request{ctx: msg.Context(), dest: p.cfg.Destination, msg: msg, done: make(chan error, 1)}
	if p.opts.Destination != nil {
		if d := p.opts.Destination(topic, msg); d != "" {
			req.dest = d
		}
	}
	req.body = sinks.AppendEnvelope(make([]byte, 0, len(msg.Payload)+256), msg)
	for {
		if err := p.handOff(req); err != nil {
			return err
		}
		select {
		case err := <-req.done:
			if err == errNotSent {
				continue
			}
			return err
		case <-req.ctx.Done():
			return &Error{Op: "send", Destination: req.dest, Err: req.ctx.Err()}
		}
	}
}

// handOff gives req to the next idle connection. It fails at once when no
// connection is up and the last connect attempt failed, so that the caller's
// retry policy, not this call, waits out an outage.
func (p *Publisher) handOff(req *request) error {
	for {
		p.mu.Lock()
		up, last, changed := p.up, p.lastErr, p.changed
		if p.parked > 0 {
			p.wakeUp()
		}
		p.mu.Unlock()
		if up == 0 && last != nil {
			return &Error{
				Op: "send", Destination: req.dest, Err: &notConnectedError{last: last},
				Permanent: errors.Is(last, sinks.ErrPermanent),
			}
		}
		select {
		case p.reqs <- req:
			return nil
		case <-changed:
		case <-req.ctx.Done():
			return &Error{Op: "send", Destination: req.dest, Err: req.ctx.Err()}
		case <-p.ctx.Done():
			return sinks.ErrClosed
		}
	}
}

// Close stops taking events, lets the sends in flight finish (at most the
// receipt timeout), disconnects every connection and waits for them. It is
// idempotent and always returns nil.
func (p *Publisher) Close() error {
	p.closeOnce.Do(func() {
		p.cancel()
		done := make(chan struct{})
		go func() {
			p.wg.Wait()
			close(done)
		}()
		t := p.env.Clock.NewTimer(p.cfg.ReceiptTimeout.D() + disconnectTimeout)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C():
			p.mu.Lock()
			for c := range p.live {
				c.kill()
			}
			p.mu.Unlock()
			<-done
		}
	})
	return nil
}

// broadcast wakes the handOffs waiting for a change. Call with p.mu held.
func (p *Publisher) broadcast() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// wakeUp restarts the connections that gave up redialling, at most once per
// ReconnectWait, however often Publish calls. Call with p.mu held.
func (p *Publisher) wakeUp() {
	now := p.env.Clock.Now()
	if !p.wokeAt.IsZero() && now.Sub(p.wokeAt) < p.cfg.ReconnectWait.D() {
		return
	}
	p.wokeAt = now
	close(p.wake)
	p.wake = make(chan struct{})
}

// run keeps connection slot id up: dial the addresses in turn from the one
// that last worked, serve requests while connected, and when the connection
// ends go on with the next address (failover: the broker that dropped it,
// missed a receipt or answered ERROR may be the one in trouble). It pauses
// after each round in which every address failed, and after a connection
// that dropped sooner than ReconnectWait, so that a broker that accepts and
// drops at once is not redialled in a hot loop.
func (p *Publisher) run(id int) {
	defer p.wg.Done()
	fields := watermill.LogFields{"connection": id}
	failures := 0 // failed attempts in a row, for MaxReconnects
	tried := 0    // failed attempts since the last pause
	rounds := 0   // pauses in a row, for the growing delay
	// refused is a permanent failure (credentials refused) met since the
	// last pause: it, not whatever the round's last address said, is what
	// Publish reports, so an unreachable standby listed after the broker
	// that refuses us does not turn the refusal into a retry.
	var refused error
	p.mu.Lock()
	next := p.preferred
	p.mu.Unlock()
	for p.ctx.Err() == nil {
		index := next % len(p.addrs)
		next++
		a := p.addrs[index]
		c, err := p.dial(a)
		var report func()
		if err != nil {
			if p.ctx.Err() != nil {
				return
			}
			tried++
			attempt := failures + 1
			report = func() { p.dialFailed(a, err, attempt, fields) }
		} else {
			refused = nil // a broker took the credentials
			since := p.env.Clock.Now()
			p.connected(c, index, fields)
			err = p.serve(c)
			p.disconnected(c, err, fields)
			if err == nil { // Close
				return
			}
			if p.env.Clock.Now().Sub(since) >= p.cfg.ReconnectWait.D() {
				failures, tried, rounds = 0, 0, 0
				continue
			}
			// Died young: a failed attempt, not a connection, and a pause.
			if !errors.Is(err, ErrConnectionLost) || errors.Is(err, sinks.ErrPermanent) {
				// Not the failure of the next Publish: the event that met
				// a refused destination, say, was that one's.
				err = &lostError{cause: bare(err)}
			}
			tried = len(p.addrs)
		}
		failures++
		pause := tried >= len(p.addrs)
		giveUp := p.cfg.MaxReconnects > 0 && failures >= p.cfg.MaxReconnects
		if errors.Is(err, sinks.ErrPermanent) {
			refused = err
		}
		final := err
		if refused != nil {
			final = refused
		}
		// The state first, then the callbacks: a Publish that follows a
		// callback finds the connection parked, and wakes it.
		wake := p.attemptFailed(final, giveUp || pause, giveUp)
		if giveUp || pause {
			refused = nil
		}
		if report != nil {
			report()
		}
		switch {
		case giveUp:
			if !p.park(wake) {
				return
			}
			failures, tried = 0, 0
		case pause:
			tried = 0
			rounds++
			if clock.Sleep(p.ctx, p.env.Clock, p.reconnectDelay(rounds)) != nil {
				return
			}
		}
	}
}

// reconnectDelay is the pause after the given number of rounds in a row
// without a connection that lasted: ReconnectWait doubled each round up to
// MaxReconnectWait, plus up to ReconnectJitter.
func (p *Publisher) reconnectDelay(rounds int) time.Duration {
	if p.opts.CustomReconnectDelay != nil {
		return p.opts.CustomReconnectDelay(rounds)
	}
	d, ceiling := p.cfg.ReconnectWait.D(), p.cfg.MaxReconnectWait.D()
	for i := 1; i < rounds && d < ceiling; i++ {
		d *= 2
	}
	d = min(d, ceiling)
	if j := p.cfg.ReconnectJitter.D(); j > 0 {
		d += rand.N(j)
	}
	return d
}

// park waits until a Publish wakes the connections that gave up, or Close;
// it reports whether to dial again.
func (p *Publisher) park(wake <-chan struct{}) bool {
	defer func() {
		p.mu.Lock()
		p.parked--
		p.mu.Unlock()
	}()
	select {
	case <-wake:
		return true
	case <-p.ctx.Done():
		return false
	}
}

// dialFailed reports a failed connect: logs and OnDialError.
func (p *Publisher) dialFailed(a Address, err error, attempt int, fields watermill.LogFields) {
	f := fields.Add(watermill.LogFields{"address": a.String(), "attempt": attempt})
	if attempt == 1 {
		p.log.Error("STOMP connect failed", err, f)
	} else {
		p.log.Debug("STOMP connect failed again: "+err.Error(), f)
	}
	if p.opts.OnDialError != nil {
		p.opts.OnDialError(a.String(), err)
	}
}

// attemptFailed records a failed attempt. When final (a pause or giving up
// follows), Publish stops waiting for a connection and fails with err while
// none is up. It returns the wake channel, taken in the same critical section
// as the parked count when park follows, so that no waking Publish is missed.
func (p *Publisher) attemptFailed(err error, final, park bool) (wake <-chan struct{}) {
	if !final {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lastErr = err
	p.broadcast()
	if park {
		p.parked++
	}
	return p.wake
}

func (p *Publisher) connected(c *conn, index int, fields watermill.LogFields) {
	p.mu.Lock()
	from := ""
	if index != p.preferred {
		from = p.addrs[p.preferred].String()
	}
	p.up++
	p.lastErr = nil
	p.preferred = index
	p.live[c] = true
	p.broadcast()
	p.mu.Unlock()
	p.log.Info("STOMP connection up", fields.Add(watermill.LogFields{
		"address": c.addr, "server": c.sc.Server(), "version": string(c.sc.Version()),
	}))
	p.trouble.up(c.addr, from)
	if p.opts.OnConnect != nil {
		p.opts.OnConnect(c.addr)
	}
}

func (p *Publisher) disconnected(c *conn, err error, fields watermill.LogFields) {
	c.kill()
	p.mu.Lock()
	p.up--
	delete(p.live, c)
	p.broadcast()
	p.mu.Unlock()
	if err == nil { // Close
		p.log.Debug("STOMP connection closed", fields.Add(watermill.LogFields{"address": c.addr}))
		return
	}
	p.log.Error("STOMP connection lost", err, fields.Add(watermill.LogFields{"address": c.addr}))
	p.trouble.lost(c.addr, err)
	if p.opts.OnDisconnect != nil {
		p.opts.OnDisconnect(c.addr, err)
	}
}
