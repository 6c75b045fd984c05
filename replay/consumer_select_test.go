package replay_test

import (
	"cmp"
	"context"
	"fmt"
	"slices"
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

// Records passed over in a row are taken as one run, and acknowledged and
// counted as exactly as one by one: around acknowledgements saved before a
// restart, past records trimmed away under the reader into an acknowledged
// range, across records missing in between (damage, or holes a database
// leaves), and up to an end (an offset or a time) inside a run. A storage
// that is not a Viewer gives the same.
func TestConsumer_select_runs_of_records_passed_over_count_exactly(t *testing.T) {
	base := time.Now().Add(-time.Hour)
	stamp := func(o uint64) time.Time { return base.Add(time.Duration(o) * time.Second) }
	// One record in 50 delivered; between them runs of seven skipped, then
	// seven passed over.
	verdict := func(o uint64) replay.Verdict {
		switch {
		case o%50 == 0:
			return replay.Deliver
		case o/7%2 == 0:
			return replay.Skip
		}
		return replay.Pass
	}
	for name, tc := range map[string]struct {
		held      uint64         // records appended: 300 if zero
		trimBelow uint64         // records below it trimmed away once the reader has started
		missing   replay.Range   // records the storage does not have
		acked     []replay.Range // saved before the journal opens
		end       uint64         // an offset or, with byTime, the time of one: the range ends before it
		byTime    bool
	}{
		"a backlog":                             {},
		"acknowledged before a restart":         {acked: []replay.Range{{From: 40, To: 140}, {From: 180, To: 181}}},
		"acknowledged past records trimmed":     {trimBelow: 100, acked: []replay.Range{{From: 90, To: 130}}},
		"records missing in between":            {missing: replay.Range{From: 108, To: 120}},            // passed over at 105-107 and 120-125
		"records missing before the head":       {missing: replay.Range{From: 296, To: 298}, held: 299}, // skipped at 294-295 and 298-299
		"up to an offset":                       {end: 130},                                             // in the run of skipped 126-132
		"up to a time":                          {end: 130, byTime: true},
		"up to an offset, past records trimmed": {trimBelow: 60, end: 228}, // in 224-230
	} {
		for _, viewer := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/viewer=%t", name, viewer), func(t *testing.T) {
				ctx := deadline(t)
				records := cmp.Or(tc.held, 300)
				mem := replay.NewMemory()
				for o := uint64(1); o <= records; o++ {
					rec := &replay.Record{UUID: strconv.FormatUint(o, 10), Payload: []byte(`{}`),
						Metadata: map[string]string{"verdict": strconv.Itoa(int(verdict(o)))}}
					require.NoError(t, mem.Append("t", []*replay.Record{rec}, func() time.Time { return stamp(o) }))
				}
				cfg := replay.ConsumerConfig{
					FromOldest: true, MaxInFlight: 4,
					Select: func(v replay.RecordView) replay.Verdict {
						n, err := strconv.Atoi(v.Meta("verdict"))
						require.NoError(t, err)
						return replay.Verdict(n)
					},
				}
				switch {
				case tc.end == 0:
					cfg.Group = "g"
					require.NoError(t, mem.SaveCursors(map[replay.CursorKey]replay.Cursor{
						{Topic: "t", Group: "g"}: {Next: 1, Acked: tc.acked}}))
				case tc.byTime:
					cfg.Until = stamp(tc.end).Add(-time.Millisecond)
				default:
					cfg.UntilOffset = tc.end
				}
				var once sync.Once
				var st replay.Storage = &holedStorage{Memory: mem, missing: tc.missing, beforeRead: func() {
					once.Do(func() {
						if tc.trimBelow > 0 {
							_, err := mem.Trim(stamp(tc.trimBelow))
							require.NoError(t, err)
						}
					})
				}}
				if !viewer {
					st = struct{ replay.Storage }{st}
				}
				j, err := replay.Open(replay.Config{Storage: st, CompactEvery: -1, CursorFlushEvery: time.Hour})
				require.NoError(t, err)
				defer j.Close()

				// What reading one record at a time gives.
				var wantDelivered []string
				var wantSkipped, wantLost uint64
				for o := uint64(1); o <= records && (tc.end == 0 || o < tc.end); o++ {
					acked := slices.ContainsFunc(tc.acked, func(r replay.Range) bool { return r.From <= o && o < r.To })
					switch {
					case acked:
					case o < tc.trimBelow, tc.missing.From <= o && o < tc.missing.To:
						wantLost++
					case verdict(o) == replay.Deliver:
						wantDelivered = append(wantDelivered, strconv.FormatUint(o, 10))
					case verdict(o) == replay.Skip:
						wantSkipped++
					}
				}

				var skipped, lost atomic.Uint64
				cfg.CountSkipped = func(n int) { skipped.Add(uint64(n)) }
				cfg.OnRetentionLoss = func(n uint64) { lost.Add(n) }
				c := j.Consumer(cfg)
				defer c.Close()
				msgs, err := c.Subscribe(context.Background(), "t")
				require.NoError(t, err)
				var delivered []string
				for len(delivered) < len(wantDelivered) {
					m := receive(t, ctx, msgs)
					delivered = append(delivered, m.UUID)
					m.Ack()
				}
				assert.ElementsMatch(t, wantDelivered, delivered)
				if tc.end != 0 {
					select {
					case m, open := <-msgs:
						require.False(t, open, "delivered past the end: %v", m)
					case <-ctx.Done():
						t.Fatal("the range did not end")
					}
				} else {
					require.Eventually(t, func() bool {
						cur, _ := j.Cursor("t", "g")
						return cur.Next == records+1 && len(cur.Acked) == 0
					}, 5*time.Second, time.Millisecond, "every record acknowledged")
				}
				require.Eventually(t, func() bool { return skipped.Load() == wantSkipped }, 5*time.Second, time.Millisecond,
					"skipped %d, want %d", skipped.Load(), wantSkipped)
				assert.Equal(t, wantLost, lost.Load(), "lost")
			})
		}
	}
}

// holedStorage is a Memory without the records of missing, that runs
// beforeRead before each read.
type holedStorage struct {
	*replay.Memory
	missing    replay.Range
	beforeRead func()
}

func (s *holedStorage) Read(topic string, from uint64, max int) ([]replay.Record, error) {
	s.beforeRead()
	all, err := s.Memory.Read(topic, from, 1<<20)
	recs := slices.DeleteFunc(all, func(r replay.Record) bool { return s.missing.From <= r.Offset && r.Offset < s.missing.To })
	return recs[:min(max, len(recs))], err
}

func (s *holedStorage) View(topic string, from uint64, max int, fn func(replay.RecordView)) error {
	s.beforeRead()
	shown := 0
	return s.Memory.View(topic, from, 1<<20, func(v replay.RecordView) {
		if o := v.Offset(); shown < max && (o < s.missing.From || o >= s.missing.To) {
			shown++
			fn(v)
		}
	})
}

// Records passed over and read ahead count as waiting, each of a run, until
// the reader gets to them.
func TestConsumer_select_counts_each_record_of_a_run_read_ahead_as_waiting(t *testing.T) {
	ctx := deadline(t)
	j := newJournal(t, nil)
	publishN(t, j, "t", 0, 50, nil) // n=0 and n=1 delivered, 2-49 skipped
	c := j.Consumer(replay.ConsumerConfig{
		Group: "g", FromOldest: true, MaxInFlight: 1,
		Select: func(v replay.RecordView) replay.Verdict {
			if n := v.Meta("n"); n == itoa(0) || n == itoa(1) {
				return replay.Deliver
			}
			return replay.Skip
		},
	})
	defer c.Close()
	msgs, err := c.Subscribe(context.Background(), "t")
	require.NoError(t, err)
	first := receive(t, ctx, msgs) // held: the second and the run of 48 behind it wait
	require.Eventually(t, func() bool { return c.Stats().Waiting == 49 }, 5*time.Second, time.Millisecond,
		"waiting: %d", c.Stats().Waiting)
	first.Ack()
	receive(t, ctx, msgs).Ack()
	require.Eventually(t, func() bool {
		cur, _ := j.Cursor("t", "g")
		return cur.Next == 51 && c.Stats().Waiting == 0
	}, 5*time.Second, time.Millisecond)
}
