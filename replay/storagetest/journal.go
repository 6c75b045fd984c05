package storagetest

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/internal/clock"
	"github.com/sinkbus/sinkbus/replay"
)

// RunJournal runs Watermill's universal Pub/Sub suite on a Journal over
// storages from f, and the journal scenarios that depend on the storage.
func RunJournal(t *testing.T, f Factory) {
	t.Run("universal_pubsub", func(t *testing.T) { testUniversal(t, f) })
	t.Run("live_reads_lose_nothing_while_publishers_race", func(t *testing.T) { testLiveReads(t, f) })
	t.Run("retention_reports_what_a_group_lost", func(t *testing.T) { testRetention(t, f) })
	t.Run("cursor_resumes_after_reopen", func(t *testing.T) { testResume(t, f) })
}

// sharedJournal plays the broker: every constructor call of one test gets
// publishers and subscribers of the same journal, on a storage of its own.
type sharedJournal struct {
	f  Factory
	mu sync.Mutex
	j  map[*testing.T]*replay.Journal
}

func (s *sharedJournal) get(t *testing.T) *replay.Journal {
	s.mu.Lock()
	defer s.mu.Unlock()
	if j, ok := s.j[t]; ok {
		return j
	}
	j, err := replay.Open(replay.Config{Storage: s.f.New(t)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = j.Close() })
	s.j[t] = j
	return j
}

// publisher keeps the shared journal open when a test closes its publisher.
type publisher struct{ *replay.Journal }

func (publisher) Close() error { return nil }

func testUniversal(t *testing.T, f Factory) {
	features := tests.Features{
		ConsumerGroups:                      true,
		GuaranteedOrder:                     true,
		GuaranteedOrderWithSingleSubscriber: true,
		Persistent:                          true,
	}
	shared := &sharedJournal{f: f, j: make(map[*testing.T]*replay.Journal)}
	tests.TestPubSub(t, features,
		func(t *testing.T) (message.Publisher, message.Subscriber) {
			j := shared.get(t)
			return publisher{j}, j.Consumer(replay.ConsumerConfig{Group: "default", FromOldest: true, NackDelay: 10 * time.Millisecond})
		},
		func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
			j := shared.get(t)
			return publisher{j}, j.Consumer(replay.ConsumerConfig{Group: group, FromOldest: true, NackDelay: 10 * time.Millisecond})
		},
	)
}

func openJournal(t *testing.T, cfg replay.Config) *replay.Journal {
	t.Helper()
	j, err := replay.Open(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = j.Close() })
	return j
}

func publish(t *testing.T, j *replay.Journal, topic string, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		m := message.NewMessage(watermill.NewULID(), []byte(`{}`))
		m.Metadata.Set("n", strconv.Itoa(i))
		require.NoError(t, j.Publish(topic, m))
	}
}

// Receive returns the next message of msgs, failing t when none comes
// within 30 s or the channel closes.
func Receive(t testing.TB, msgs <-chan *message.Message) *message.Message {
	t.Helper()
	select {
	case m, ok := <-msgs:
		require.True(t, ok, "subscription closed")
		return m
	case <-time.After(30 * time.Second):
		t.Fatal("no message within 30 s")
		return nil
	}
}

// RunLiveReads runs the scenario of RunJournal in which a subscriber reads
// while publishers race to append: quick enough to repeat over a sweep of an
// engine's configurations, where the whole suite once or twice is enough.
func RunLiveReads(t *testing.T, f Factory) { testLiveReads(t, f) }

// A record appended while the reader finds the journal empty must not be
// mistaken for an unreadable gap and skipped, nor one published while the
// reader moves through the storage (across a segment file, say).
func testLiveReads(t *testing.T, f Factory) {
	j := openJournal(t, replay.Config{Storage: f.New(t), CompactEvery: -1})
	msgs, err := j.Consumer(replay.ConsumerConfig{Group: "g", MaxInFlight: 4}).Subscribe(context.Background(), "t")
	require.NoError(t, err)

	const publishers, each = 4, 750
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				m := message.NewMessage(watermill.NewULID(), []byte(`{}`))
				m.Metadata.Set("n", strconv.Itoa(p*each+i))
				assert.NoError(t, j.Publish("t", m))
			}
		}()
	}
	seen := make(map[string]bool)
	timeout := time.After(60 * time.Second)
	for len(seen) < publishers*each {
		select {
		case m := <-msgs:
			seen[m.Metadata.Get("n")] = true
			m.Ack()
		case <-timeout:
			t.Fatalf("received %d of %d records", len(seen), publishers*each)
		}
	}
	wg.Wait()
}

// Records past retention are gone for a group that was behind, which hears
// how many it lost, and for Scan.
func testRetention(t *testing.T, f Factory) {
	clk := clock.NewFake(time.Time{})
	st := f.New(t)
	j := openJournal(t, replay.Config{Storage: st, Clock: clk, Retention: 24 * time.Hour, CompactEvery: -1})
	require.NoError(t, j.SetCursor("t", "behind", 1))
	publish(t, j, "t", 0, 5) // 1-5
	clk.Advance(48 * time.Hour)
	publish(t, j, "t", 5, 2) // 6-7

	n, err := j.Compact()
	require.NoError(t, err)
	assert.Equal(t, 5, n)
	first, next := st.Bounds("t")
	assert.Equal(t, uint64(6), first)
	assert.Equal(t, uint64(8), next)

	var lost atomic.Uint64
	msgs, err := j.Consumer(replay.ConsumerConfig{Group: "behind",
		OnRetentionLoss: func(n uint64) { lost.Add(n) }}).Subscribe(context.Background(), "t")
	require.NoError(t, err)
	for _, want := range []int{5, 6} {
		m := Receive(t, msgs)
		assert.Equal(t, strconv.Itoa(want), m.Metadata.Get("n"))
		m.Ack()
	}
	assert.Equal(t, uint64(5), lost.Load())

	// Nothing published since: the rest expires all the same.
	clk.Advance(48 * time.Hour)
	n, err = j.Compact()
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	var scanned int
	require.NoError(t, j.Scan(context.Background(), "t", time.Time{}, time.Time{}, func(replay.Record) bool { scanned++; return true }))
	assert.Zero(t, scanned, "Scan sees no expired record")
}

// A group resumes where it acknowledged, across a reopen of the journal.
func testResume(t *testing.T, f Factory) {
	if f.Reopen == nil {
		t.Skip("the storage keeps nothing across a reopen")
	}
	st := f.New(t)
	j, err := replay.Open(replay.Config{Storage: st, CompactEvery: -1})
	require.NoError(t, err)
	publish(t, j, "t", 0, 5)
	c := j.Consumer(replay.ConsumerConfig{Group: "g", FromOldest: true})
	ctx, cancel := context.WithCancel(context.Background())
	msgs, err := c.Subscribe(ctx, "t")
	require.NoError(t, err)
	for range 3 {
		Receive(t, msgs).Ack()
	}
	cancel()
	for range msgs {
	}
	require.NoError(t, c.Close())
	require.NoError(t, j.Close()) // closes st

	st = f.Reopen(t, st)
	j = openJournal(t, replay.Config{Storage: st, CompactEvery: -1})
	cur, ok := j.Cursor("t", "g")
	require.True(t, ok)
	assert.Equal(t, uint64(4), cur.Next)
	msgs, err = j.Consumer(replay.ConsumerConfig{Group: "g"}).Subscribe(context.Background(), "t")
	require.NoError(t, err)
	m := Receive(t, msgs)
	assert.Equal(t, "3", m.Metadata.Get("n"), "the first unacknowledged record comes next")
	m.Ack()
}
