package replay_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/replay"
)

// Reading a backlog in which a Select keeps one record in 25, as each of
// 25 integrations observing a name of its own does: the cost per record
// read is mostly that of the records passed over. A group catching up, and
// a range (a replay) ending at the head.
func BenchmarkConsumer_select_passes_over_a_backlog(b *testing.B) {
	b.Run("group", func(b *testing.B) { benchPassingOver(b, "g") })
	b.Run("range", func(b *testing.B) { benchPassingOver(b, "") })
}

func benchPassingOver(b *testing.B, group string) {
	const kept = 25
	j, err := replay.Open(replay.Config{Storage: replay.NewMemoryWith(replay.MemoryConfig{MaxBytes: -1}), CompactEvery: -1, CursorFlushEvery: time.Hour})
	require.NoError(b, err)
	defer j.Close()
	payload := make([]byte, 256)
	for i := range b.N {
		m := message.NewMessage(strconv.Itoa(i), payload)
		m.Metadata.Set("name", strconv.Itoa(i%kept))
		require.NoError(b, j.Publish("t", m))
	}
	cfg := replay.ConsumerConfig{
		Group: group, FromOldest: true, MaxInFlight: 8, SharedContext: true,
		Select: func(v replay.RecordView) replay.Verdict {
			if v.Meta("name") == "0" {
				return replay.Deliver
			}
			return replay.Skip
		},
	}
	if group == "" {
		cfg.UntilOffset = uint64(b.N) + 1
	}
	var skipped atomic.Int64
	cfg.CountSkipped = func(n int) { skipped.Add(int64(n)) }
	c := j.Consumer(cfg)
	defer c.Close()
	b.ReportAllocs()
	b.ResetTimer()
	msgs, err := c.Subscribe(context.Background(), "t")
	require.NoError(b, err)
	delivered := (b.N + kept - 1) / kept
	for range delivered {
		(<-msgs).Ack()
	}
	require.Eventually(b, func() bool {
		if group != "" {
			if cur, _ := j.Cursor("t", group); cur.Next != uint64(b.N)+1 {
				return false
			}
		}
		return skipped.Load() == int64(b.N-delivered)
	}, 10*time.Second, time.Millisecond)
}
