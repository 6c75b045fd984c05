package replay_test

import (
	"fmt"
	"strings"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sinkbus/sinkbus/replay"
)

func ExampleNewMemoryWith() {
	// An in-memory journal holding about 2 KiB of records.
	mem := replay.NewMemoryWith(replay.MemoryConfig{MaxBytes: 2 << 10})
	j, err := replay.Open(replay.Config{Storage: mem})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer j.Close()
	// A group that has read nothing yet.
	_ = j.SetCursor("orders", "erp", 1)

	payload := []byte(`{"note":"` + strings.Repeat("x", 500) + `"}`)
	for i := range 10 {
		_ = j.Publish("orders", message.NewMessage(fmt.Sprint("order-", i), payload))
	}
	// The oldest went to make room; erp is told how many when it reads.
	first, next := mem.Bounds("orders")
	fmt.Printf("holds offsets %d to %d, within the bound: %v\n", first, next-1, mem.Size() <= mem.MaxBytes())
	// Output:
	// holds offsets 9 to 10, within the bound: true
}
