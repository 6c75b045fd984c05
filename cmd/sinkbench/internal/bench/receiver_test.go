package bench_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/cmd/sinkbench/internal/bench"
)

func TestReceiver_counts_requests_and_connections_per_endpoint(t *testing.T) {
	recv := bench.NewReceiver()
	t.Cleanup(recv.Close)
	a, b := recv.Endpoint("a"), recv.Endpoint("b")
	client := &http.Client{Transport: bench.IdleTransport()}
	t.Cleanup(client.CloseIdleConnections)

	var seen [][]byte
	a.Observe(func(_ *http.Request, body []byte) { seen = append(seen, body) })
	doneA := a.Expect(3)
	for range 3 {
		require.NoError(t, bench.Post(context.Background(), client, a.URL, []byte(`{"n":1}`), nil))
	}
	a.Observe(nil)
	require.NoError(t, bench.Post(context.Background(), client, a.URL, []byte(`{"n":2}`), nil))
	require.NoError(t, bench.Post(context.Background(), client, b.URL, []byte(`{}`), func(h http.Header) { h.Set("X-Test", "1") }))

	select {
	case <-doneA:
	case <-time.After(10 * time.Second):
		t.Fatal("Expect(3) not signalled after three requests")
	}
	assert.EqualValues(t, 4, a.Count())
	assert.EqualValues(t, 1, b.Count())
	assert.Equal(t, [][]byte{[]byte(`{"n":1}`), []byte(`{"n":1}`), []byte(`{"n":1}`)}, seen, "observed until Observe(nil)")
	// Sequential requests on a keep-alive client: one connection each.
	assert.EqualValues(t, 1, a.Conns())
	assert.EqualValues(t, 1, b.Conns())

	err := bench.Post(context.Background(), client, a.URL+"-missing", nil, nil)
	assert.ErrorContains(t, err, "404", "a path no endpoint has is refused")
}

func TestCost_per_event(t *testing.T) {
	var c bench.Cost
	assert.Equal(t, "-", c.String())
	end := c.Measure(10)
	sink := make([][]byte, 0, 100)
	for range 100 {
		sink = append(sink, make([]byte, 1<<10))
	}
	end()
	assert.Len(t, sink, 100)
	assert.Equal(t, 10, c.Events)
	assert.GreaterOrEqual(t, c.AllocsPerEvent(), 10.0, "100 allocations over 10 events")
}

func TestMedian(t *testing.T) {
	assert.Equal(t, 2.0, bench.Median([]float64{3, 1, 2}))
	assert.Equal(t, 3.0, bench.Median([]float64{4, 1, 3, 2}), "the upper one of an even count")
	xs := []float64{3, 1, 2}
	bench.Median(xs)
	assert.Equal(t, []float64{3, 1, 2}, xs, "the input is not sorted in place")
}

func TestCost_MeasureReceiver_counts_the_receivers_allocations_apart(t *testing.T) {
	recv := bench.NewReceiver()
	t.Cleanup(recv.Close)
	ep := recv.Endpoint("split")
	client := &http.Client{Transport: bench.IdleTransport()}
	t.Cleanup(client.CloseIdleConnections)
	body := bench.Envelope()
	post := func(n int) {
		for range n {
			require.NoError(t, bench.Post(context.Background(), client, ep.URL, body, nil))
		}
	}
	post(10) // the connection is open

	const n = 200
	var c bench.Cost
	var mine [][]byte
	c.MeasureReceiver(n, func() {
		post(n)
		for range 30 * n {
			mine = append(mine, make([]byte, 64)) // this goroutine's, not the receiver's
		}
	})
	assert.Len(t, mine, 30*n)
	assert.Zero(t, c.Events, "the round counts in nothing else")
	assert.Equal(t, n, c.ReceiverEvents)
	// net/http's server makes about 24 allocations per such request (the
	// request, its headers, the response), and none of this goroutine's
	// 30 per request is counted.
	per := c.ReceiverAllocsPerEvent()
	t.Logf("receiver: %.1f allocations per request", per)
	assert.Greater(t, per, 10.0)
	assert.Less(t, per, 45.0)

	end := c.Measure(n)
	post(n)
	end()
	assert.InDelta(t, c.AllocsPerEvent()-per, c.OwnAllocsPerEvent(), 1e-9)
	assert.Contains(t, c.String(), "(receiver ")
}

// A round expects its events while the last hits of the round before may
// still be landing: under -race, a Hit reading the target as Expect sets
// it is a failure.
func TestCounter_expects_while_hits_land(t *testing.T) {
	var c bench.Counter
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 2000 {
				c.Hit()
			}
		}()
	}
	allHit := make(chan struct{})
	go func() { wg.Wait(); close(allHit) }()
	for {
		select {
		case <-c.Expect(1):
			continue
		case <-allHit:
		}
		break
	}
	assert.Equal(t, int64(8000), c.Count())
}
