package segments_test

import (
	"fmt"
	"os"
	"time"

	"github.com/sinkbus/sinkbus/replay"
	"github.com/sinkbus/sinkbus/replay/segments"
)

func ExampleOpen() {
	dir, _ := os.MkdirTemp("", "journal")
	defer os.RemoveAll(dir)

	store, err := segments.Open(segments.Config{Dir: dir})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()

	err = store.Append("order.fulfilled", []*replay.Record{
		{UUID: "01J0000000000000000000000A", Payload: []byte(`{"order":"A-1"}`)},
		{UUID: "01J0000000000000000000000B", Payload: []byte(`{"order":"A-2"}`)},
	}, time.Now)
	if err != nil {
		fmt.Println(err)
		return
	}
	recs, _ := store.Read("order.fulfilled", 1, 10)
	for _, r := range recs {
		fmt.Println(r.Offset, r.UUID, string(r.Payload))
	}
	first, next := store.Bounds("order.fulfilled")
	fmt.Println("bounds", first, next)
	// Output:
	// 1 01J0000000000000000000000A {"order":"A-1"}
	// 2 01J0000000000000000000000B {"order":"A-2"}
	// bounds 1 3
}
