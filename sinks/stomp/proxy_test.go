package stomp_test

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3/frame"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/stomp"
)

// stompProxy relays STOMP frames between the sink and a real broker and
// records which events' RECEIPTs it passed back. Once told to, it swallows
// receipts (the broker stored the event, the sink never hears of it) and then
// dies: listener and connections closed, as a broker host that goes away.
type stompProxy struct {
	ln     net.Listener
	target string
	sends  atomic.Int32
	dead   chan struct{}

	mu        sync.Mutex
	conns     []net.Conn
	receipted map[string]bool // events whose RECEIPT reached the sink
	swallowed map[string]bool // events whose RECEIPT the proxy kept
	swallow   int             // receipts to swallow before dying; 0: none
	closed    bool
}

func newStompProxy(t *testing.T, target string) *stompProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &stompProxy{ln: ln, target: target, dead: make(chan struct{}),
		receipted: map[string]bool{}, swallowed: map[string]bool{}}
	t.Cleanup(p.kill)
	go p.accept()
	return p
}

func (p *stompProxy) addr() string { return p.ln.Addr().String() }

func (p *stompProxy) accept() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			client.Close()
			server.Close()
			return
		}
		p.conns = append(p.conns, client, server)
		p.mu.Unlock()
		go p.relay(client, server)
	}
}

// relay passes frames both ways; receipt ids are per connection.
func (p *stompProxy) relay(client, server net.Conn) {
	defer client.Close()
	defer server.Close()
	var mu sync.Mutex
	eventOf := map[string]string{} // receipt id → sinkbus-id
	go func() {
		defer client.Close()
		defer server.Close()
		r, w := frame.NewReader(client), frame.NewWriter(server)
		for {
			f, err := r.Read()
			if err != nil {
				return
			}
			if f != nil && f.Command == frame.SEND {
				mu.Lock()
				eventOf[f.Header.Get(frame.Receipt)] = f.Header.Get(stomp.HeaderID)
				mu.Unlock()
				p.sends.Add(1)
			}
			if w.Write(f) != nil {
				return
			}
		}
	}()
	r, w := frame.NewReader(server), frame.NewWriter(client)
	for {
		f, err := r.Read()
		if err != nil {
			return
		}
		if f != nil && f.Command == frame.RECEIPT {
			mu.Lock()
			id := eventOf[f.Header.Get(frame.ReceiptId)]
			mu.Unlock()
			if id != "" && p.keepReceipt(id) {
				continue
			}
		}
		if w.Write(f) != nil {
			return
		}
	}
}

// keepReceipt records the receipt of event id, and reports whether the
// proxy swallows it instead of passing it on.
func (p *stompProxy) keepReceipt(id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.swallow == 0 {
		p.receipted[id] = true
		return false
	}
	p.swallowed[id] = true
	if len(p.swallowed) >= p.swallow {
		go p.kill()
	}
	return true
}

// dieAfterSwallowing makes the proxy keep the next n receipts, then die.
func (p *stompProxy) dieAfterSwallowing(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.swallow = n
}

func (p *stompProxy) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	p.ln.Close()
	for _, c := range p.conns {
		c.Close()
	}
	close(p.dead)
}

func (p *stompProxy) snapshot() (receipted, swallowed map[string]bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	receipted, swallowed = map[string]bool{}, map[string]bool{}
	for id := range p.receipted {
		receipted[id] = true
	}
	for id := range p.swallowed {
		swallowed[id] = true
	}
	return receipted, swallowed
}

// The first address is a proxy to the broker that dies mid-stream, with
// sends whose receipts it kept; the second is a proxy to the same broker
// that stays. Every event arrives; every event reported delivered had its
// receipt reach the sink; those whose receipts were lost are sent again,
// through the second address.
func TestStompSink_first_address_stopped_mid_stream(t *testing.T) {
	for name, get := range realBrokers(t) {
		t.Run(name, func(t *testing.T) {
			b := get(t)
			first, second := newStompProxy(t, b.addr), newStompProxy(t, b.addr)
			dest := testDest()
			ch := b.subscribe(t, dest) // before: a SUBSCRIBE to a full queue cannot sync
			cfg := b.config(dest)
			cfg.Addresses = []string{fmt.Sprintf("failover:(stomp://%s,stomp://%s)", first.addr(), second.addr())}
			cfg.Connections = 4
			p := newSink(t, cfg, sinks.Env{Concurrency: 4})

			const n, workers = 300, 4
			var mu sync.Mutex
			confirmed := make(map[string]bool, n)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			go func() { // kill the first address a third of the way in
				for first.sends.Load() < n/3 {
					select {
					case <-ctx.Done():
						return
					case <-time.After(time.Millisecond):
					}
				}
				first.dieAfterSwallowing(2)
				select {
				case <-first.dead:
				case <-time.After(5 * time.Second): // fewer sends in flight than expected
					first.kill()
				}
			}()
			var wg sync.WaitGroup
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := w; i < n; i += workers {
						msg := event("order.created", "acme", fmt.Sprintf(`{"n":%d}`, i))
						if assert.NoError(t, publishRetrying(ctx, p, msg)) {
							mu.Lock()
							confirmed[msg.UUID] = true
							mu.Unlock()
						}
					}
				}()
			}
			wg.Wait()
			<-first.dead

			require.Len(t, confirmed, n)
			viaFirst, swallowed := first.snapshot()
			viaSecond, _ := second.snapshot()
			assert.NotEmpty(t, viaFirst, "events went through the first address")
			assert.NotEmpty(t, viaSecond, "and through the second after it died")
			assert.NotEmpty(t, swallowed, "the first address died with sends in flight")
			for id := range confirmed {
				assert.True(t, viaFirst[id] || viaSecond[id], "event %s reported delivered without a receipt", id)
			}
			for id := range swallowed {
				assert.True(t, viaSecond[id], "event %s, whose receipt was lost, sent again via the second address", id)
			}
			readAll(t, ch, confirmed)
		})
	}
}
