package postgres_test

import (
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/internal/pgtest"
	"github.com/sinkbus/sinkbus/replay/postgres"
)

// CheckAppend, which bus readiness asks, answers whether the server can be
// reached: here the storage talks to it through a TCP relay, which the test
// then cuts, as a network or the server going away would.
func TestStorage_CheckAppend_reports_a_server_that_cannot_be_reached(t *testing.T) {
	relay := newRelay(t, pgtest.URL(t))
	s := open(t, postgres.Config{URL: relay.url, Timeout: 2 * time.Second})
	require.NoError(t, s.CheckAppend("events"))

	relay.cut()
	err := s.CheckAppend("events")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the server does not answer")
}

// relay forwards TCP connections to a PostgreSQL server until cut.
type relay struct {
	url string
	ln  net.Listener
	mu  sync.Mutex
	cs  []net.Conn
}

func newRelay(t *testing.T, serverURL string) *relay {
	u, err := url.Parse(serverURL)
	require.NoError(t, err, "a URL of the form postgres://host:port/db")
	target := u.Host
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	u.Host = ln.Addr().String()
	r := &relay{url: u.String(), ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			r.mu.Lock()
			r.cs = append(r.cs, c, up)
			r.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
	t.Cleanup(r.cut)
	return r
}

// cut refuses new connections and drops the open ones.
func (r *relay) cut() {
	_ = r.ln.Close()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.cs {
		_ = c.Close()
	}
}
