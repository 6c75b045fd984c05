package replay_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/sinkbus/sinkbus/replay"
)

// Appending at the bound costs the same whatever the bound: making room
// removes the oldest records one by one, or closes the gaps of acknowledged
// ones in one pass per eighth of the bound, never a pass per append.
func BenchmarkMemory_Append_at_the_bound(b *testing.B) {
	for _, bound := range []int64{1 << 20, 16 << 20, 128 << 20} {
		for _, acked := range []string{"none", "ranges"} {
			b.Run(fmt.Sprintf("bound=%dMiB/acked=%s", bound>>20, acked), func(b *testing.B) {
				m := replay.NewMemoryWith(replay.MemoryConfig{MaxBytes: bound})
				rec := kib(0)
				fill := int(bound/1100) + 1
				for range fill {
					_ = m.Append("t", []*replay.Record{{UUID: rec.UUID, Payload: rec.Payload}}, time.Now)
				}
				save := func(next uint64) {
					if acked == "ranges" {
						// One record waited for at the front, the rest acknowledged:
						// room comes from between them.
						first, _ := m.Bounds("t")
						_ = m.SaveCursors(map[replay.CursorKey]replay.Cursor{{Topic: "t", Group: "g"}: {
							Next: first, Acked: []replay.Range{{From: first + 1, To: next}}}})
					}
				}
				save(uint64(fill))
				b.ReportAllocs()
				b.ResetTimer()
				for i := range b.N {
					_ = m.Append("t", []*replay.Record{{UUID: rec.UUID, Payload: rec.Payload}}, time.Now)
					if i%1000 == 0 { // the journal saves cursors every 100 ms
						_, next := m.Bounds("t")
						save(next - 1)
					}
				}
			})
		}
	}
}
