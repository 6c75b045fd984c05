package replay_test

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/replay"
)

// Select decides before a record becomes a message: what it passes over is
// never sent, is acknowledged all the same (the cursor moves past it,
// around a delivery still in flight), and only what it skips reaches
// OnSkip, whole. The same with a storage that shows records in place
// (Memory) and one that does not.
func TestConsumer_select_acknowledges_what_it_passes_over(t *testing.T) {
	for name, st := range map[string]replay.Storage{
		"viewer":     replay.NewMemory(),
		"not viewer": &hookStorage{Storage: replay.NewMemory()},
	} {
		t.Run(name, func(t *testing.T) {
			ctx := deadline(t)
			j, err := replay.Open(replay.Config{Storage: st, CompactEvery: -1, CursorFlushEvery: time.Hour})
			require.NoError(t, err)
			defer j.Close()
			// n % 3: 0 delivered, 1 skipped, 2 passed over.
			for i := range 30 {
				m := message.NewMessage(strconv.Itoa(i), []byte(`{"n":`+strconv.Itoa(i)+`}`))
				m.Metadata.Set("n", strconv.Itoa(i))
				require.NoError(t, j.Publish("t", m))
			}
			var mu sync.Mutex
			var skipped []string
			c := j.Consumer(replay.ConsumerConfig{
				Group: "g", FromOldest: true, MaxInFlight: 4,
				Select: func(v replay.RecordView) replay.Verdict {
					n, err := strconv.Atoi(v.Meta("n"))
					require.NoError(t, err)
					assert.JSONEq(t, `{"n":`+v.Meta("n")+`}`, string(v.Data()))
					return []replay.Verdict{replay.Deliver, replay.Skip, replay.Pass}[n%3]
				},
				OnSkip: func(rec *replay.Record) {
					assert.Equal(t, rec.UUID, rec.Metadata["n"])
					assert.JSONEq(t, `{"n":`+rec.UUID+`}`, string(rec.Payload))
					mu.Lock()
					skipped = append(skipped, rec.UUID)
					mu.Unlock()
				},
			})
			defer c.Close()
			msgs, err := c.Subscribe(context.Background(), "t")
			require.NoError(t, err)

			first := receive(t, ctx, msgs) // held unacknowledged for now
			got := []string{first.UUID}
			for range 9 {
				m := receive(t, ctx, msgs)
				got = append(got, m.UUID)
				m.Ack()
			}
			assert.ElementsMatch(t, []string{"0", "3", "6", "9", "12", "15", "18", "21", "24", "27"}, got)
			held, err := strconv.Atoi(first.UUID)
			require.NoError(t, err)
			offset := uint64(held) + 1
			require.Eventually(t, func() bool {
				cur, _ := j.Cursor("t", "g")
				return cur.Next == offset && len(cur.Acked) == 1 && cur.Acked[0] == replay.Range{From: offset + 1, To: 31}
			}, 5*time.Second, time.Millisecond, "everything but the message in flight is acknowledged, in one range")
			first.Ack()
			require.Eventually(t, func() bool {
				cur, _ := j.Cursor("t", "g")
				return cur.Next == 31 && len(cur.Acked) == 0
			}, 5*time.Second, time.Millisecond)
			mu.Lock()
			defer mu.Unlock()
			assert.ElementsMatch(t, []string{"1", "4", "7", "10", "13", "16", "19", "22", "25", "28"}, skipped, "each once")
		})
	}
}

// At the head, the appends a reader's Select passes over entirely are
// acknowledged by the appending goroutine without waking the reader; none
// of those it keeps is missed, and each it skips reaches OnSkip once,
// whatever the appends race with.
func TestConsumer_select_at_the_head_misses_nothing(t *testing.T) {
	ctx := deadline(t)
	j := newJournal(t, nil)
	var mu sync.Mutex
	skipped := map[string]int{}
	c := j.Consumer(replay.ConsumerConfig{
		Group: "g", MaxInFlight: 8,
		Select: func(v replay.RecordView) replay.Verdict {
			switch {
			case v.Meta("keep") == "yes":
				return replay.Deliver
			case v.Meta("report") == "yes":
				return replay.Skip
			}
			return replay.Pass
		},
		OnSkip: func(rec *replay.Record) {
			assert.Equal(t, "yes", rec.Metadata["report"])
			mu.Lock()
			skipped[rec.UUID]++
			mu.Unlock()
		},
	})
	defer c.Close()
	msgs, err := c.Subscribe(context.Background(), "t")
	require.NoError(t, err)
	const publishers, each = 8, 500
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				m := message.NewMessage(strconv.Itoa(p*each+i), []byte(`{}`))
				switch {
				case i%10 == 0:
					m.Metadata.Set("keep", "yes")
				case i%3 == 0:
					m.Metadata.Set("report", "yes")
				}
				assert.NoError(t, j.Publish("t", m))
			}
		}()
	}
	got := map[string]bool{}
	for len(got) < publishers*each/10 {
		m := receive(t, ctx, msgs)
		assert.False(t, got[m.UUID], "delivered once")
		got[m.UUID] = true
		go m.Ack()
	}
	wg.Wait()
	require.Eventually(t, func() bool {
		cur, _ := j.Cursor("t", "g")
		return cur.Next == publishers*each+1 && len(cur.Acked) == 0
	}, 5*time.Second, time.Millisecond, "every offset acknowledged")
	select {
	case m := <-msgs:
		t.Fatalf("unexpected message %s", m.UUID)
	default:
	}
	mu.Lock()
	defer mu.Unlock()
	want := 0
	for i := range each {
		if i%10 != 0 && i%3 == 0 {
			want++
		}
	}
	assert.Len(t, skipped, publishers*want, "every skipped record reported")
	for id, n := range skipped {
		assert.Equal(t, 1, n, "record %s reported once", id)
	}
}

// A message carries the delivery's own payload and metadata: what its
// handler changes in them before a nack is not sent again.
func TestConsumer_a_nacked_message_is_sent_again_as_stored(t *testing.T) {
	ctx := deadline(t)
	j := newJournal(t, nil)
	publishN(t, j, "t", 0, 1, nil)
	c := j.Consumer(replay.ConsumerConfig{Group: "g", FromOldest: true, NackDelay: time.Millisecond, SharedContext: true})
	defer c.Close()
	msgs, err := c.Subscribe(context.Background(), "t")
	require.NoError(t, err)
	m := receive(t, ctx, msgs)
	m.Metadata.Set("n", "changed")
	m.Payload[0] = 'X'
	m.Nack()
	m = receive(t, ctx, msgs)
	assert.Equal(t, itoa(0), m.Metadata.Get("n"))
	assert.Equal(t, `{}`, string(m.Payload))
	m.Ack()
}

// CountSkipped counts what Select skips, in bulk, whether the reader read
// it or an append passed it over at the head.
func TestConsumer_select_counts_skipped_records(t *testing.T) {
	j := newJournal(t, nil)
	publish := func(from, n int) {
		for i := from; i < from+n; i++ {
			m := message.NewMessage(strconv.Itoa(i), []byte(`{}`))
			if i%3 == 0 {
				m.Metadata.Set("report", "yes")
			}
			require.NoError(t, j.Publish("t", m))
		}
	}
	publish(0, 60) // read by the reader
	var counted atomic.Int64
	c := j.Consumer(replay.ConsumerConfig{
		Group: "g", FromOldest: true, MaxInFlight: 2,
		Select: func(v replay.RecordView) replay.Verdict {
			if v.Meta("report") == "yes" {
				return replay.Skip
			}
			return replay.Pass
		},
		CountSkipped: func(n int) { counted.Add(int64(n)) },
	})
	defer c.Close()
	_, err := c.Subscribe(context.Background(), "t")
	require.NoError(t, err)
	require.Eventually(t, func() bool { return counted.Load() == 20 }, 5*time.Second, time.Millisecond)
	publish(60, 60) // passed over at the head
	require.Eventually(t, func() bool {
		cur, _ := j.Cursor("t", "g")
		return counted.Load() == 40 && cur.Next == 121
	}, 5*time.Second, time.Millisecond, "counted %d", counted.Load())
}
