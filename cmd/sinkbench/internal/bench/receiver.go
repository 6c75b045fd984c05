package bench

import (
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
)

// Receiver is the destination of every side: one net/http server on
// loopback answering 204 to each POST after reading its body. Each side
// gets an Endpoint of its own (a listener and a path), so that its requests
// and connections are counted apart while the server, its handler and its
// settings are the very same.
type Receiver struct {
	srv *http.Server

	mu     sync.RWMutex
	byPath map[string]*Endpoint
	byAddr map[string]*Endpoint // listener address
}

// Endpoint is one side's address on the Receiver.
type Endpoint struct {
	// URL is where the side posts.
	URL string
	Counter
	conns   atomic.Int64
	observe atomic.Pointer[func(*http.Request, []byte)]
}

// Conns is how many connections the side opened to the receiver.
func (e *Endpoint) Conns() int64 { return e.conns.Load() }

// Observe has fn see each request and its body from now on, before the
// request is counted; nil stops it. It is off in measured rounds unless a
// case measures with it on both sides.
func (e *Endpoint) Observe(fn func(r *http.Request, body []byte)) {
	if fn == nil {
		e.observe.Store(nil)
		return
	}
	e.observe.Store(&fn)
}

// NewReceiver starts a receiver with no endpoint yet.
func NewReceiver() *Receiver {
	r := &Receiver{byPath: map[string]*Endpoint{}, byAddr: map[string]*Endpoint{}}
	r.srv = &http.Server{Handler: r, ConnState: r.connState}
	return r
}

// Endpoint opens a listener for the side called name.
func (r *Receiver) Endpoint(name string) *Endpoint {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	Must(err)
	path := "/hook/" + name
	e := &Endpoint{URL: "http://" + ln.Addr().String() + path}
	r.mu.Lock()
	r.byPath[path] = e
	r.byAddr[ln.Addr().String()] = e
	r.mu.Unlock()
	go func() { _ = r.srv.Serve(ln) }()
	return e
}

// Close stops the server and its connections.
func (r *Receiver) Close() { _ = r.srv.Close() }

func (r *Receiver) connState(c net.Conn, s http.ConnState) {
	if s != http.StateNew {
		return
	}
	r.mu.RLock()
	e := r.byAddr[c.LocalAddr().String()]
	r.mu.RUnlock()
	if e != nil {
		e.conns.Add(1)
	}
}

func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.RLock()
	e := r.byPath[req.URL.Path]
	r.mu.RUnlock()
	if e == nil {
		http.NotFound(w, req)
		return
	}
	body, _ := io.ReadAll(req.Body)
	if fn := e.observe.Load(); fn != nil {
		(*fn)(req, body)
	}
	w.WriteHeader(http.StatusNoContent)
	e.Hit()
}
