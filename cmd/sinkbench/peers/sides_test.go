package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/cmd/sinkbench/internal/bench"
)

// Every side delivers each event once; each signed side's requests pass
// the Standard Webhooks reference library and carry the headers sinkbus
// sends; durable sides count the events their fsyncs made durable;
// Benthos's idle variants leave net/http's DefaultTransport as they
// found it.
func TestSides_deliver_and_sign_alike(t *testing.T) {
	stock := http.DefaultTransport
	recv := bench.NewReceiver()
	t.Cleanup(recv.Close)
	for _, s := range sides(t.TempDir()) {
		t.Run(s.name, func(t *testing.T) {
			ep := recv.Endpoint(s.name)
			send, stop := s.start(ep)
			t.Cleanup(stop)
			v := newVerifier()
			ep.Observe(v.observe)
			before := ep.Count()
			done := ep.Expect(40)
			send(40)
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Fatalf("%d of 40 requests received", ep.Count()-before)
			}
			ep.Observe(nil)
			assert.EqualValues(t, 40, ep.Count()-before)
			if s.signed {
				require.NoError(t, v.check(s.name, 40))
			} else {
				assert.Zero(t, v.ok.Load(), "an unsigned side's request verified")
			}
			assert.Same(t, stock, http.DefaultTransport)
			if s.journal != nil {
				assert.Eventually(t, func() bool { _, records := s.journalFsyncs(); return records == 40 },
					5*time.Second, time.Millisecond, "the journal's fsyncs are counted, each event once")
			}
		})
	}
}
