package replay_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sinkbus/sinkbus/replay"
	"github.com/sinkbus/sinkbus/replay/segments"
)

func ExampleOpen() {
	dir, _ := os.MkdirTemp("", "journal")
	defer os.RemoveAll(dir)

	// The durable storage: a segment log in a directory. Without Storage
	// the journal keeps everything in memory.
	store, err := segments.Open(segments.Config{Dir: dir})
	if err != nil {
		fmt.Println(err)
		return
	}
	j, err := replay.Open(replay.Config{Storage: store, Retention: 7 * 24 * time.Hour})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer j.Close() // closes the storage too

	// Publish returns once the messages are on disk.
	err = j.Publish("orders",
		message.NewMessage("01J0000000000000000000000A", []byte(`{"order":"A-1"}`)),
		message.NewMessage("01J0000000000000000000000B", []byte(`{"order":"A-2"}`)),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("next offset:", j.Head("orders"))
	// Output:
	// next offset: 3
}

func ExampleJournal_Consumer() {
	j, _ := replay.Open(replay.Config{})
	defer j.Close()
	for _, order := range []string{"A-1", "A-2", "A-3"} {
		_ = j.Publish("orders", message.NewMessage("id-"+order, []byte(order)))
	}

	// A consumer group reads from its own cursor, which moves only as its
	// messages are acknowledged.
	c := j.Consumer(replay.ConsumerConfig{Group: "erp", FromOldest: true})
	ctx, stop := context.WithCancel(context.Background())
	msgs, _ := c.Subscribe(ctx, "orders")
	for range 2 {
		m := <-msgs
		fmt.Println("delivered", string(m.Payload))
		m.Ack()
	}
	stop()
	for range msgs { // the channel closes once the consumer has stopped
	}

	cursor, _ := j.Cursor("orders", "erp")
	fmt.Println("cursor:", cursor.Next, "lag:", j.Lag("orders", "erp"))

	// The next consumer of the group resumes there.
	again, _ := j.Consumer(replay.ConsumerConfig{Group: "erp"}).Subscribe(context.Background(), "orders")
	m := <-again
	fmt.Println("resumed at", string(m.Payload))
	m.Ack()
	// Output:
	// delivered A-1
	// delivered A-2
	// cursor: 3 lag: 1
	// resumed at A-3
}

func ExampleJournal_Subscribe() {
	// Subscribe is the plain Watermill side of the journal: its zero
	// Config.Subscriber is the durable group "default", from the oldest
	// record. Any Watermill code (a Router, say) can use the journal so.
	j, _ := replay.Open(replay.Config{})
	defer j.Close()
	var sub message.Subscriber = j
	var pub message.Publisher = j

	_ = pub.Publish("orders", message.NewMessage("id-1", []byte("A-1")))
	msgs, _ := sub.Subscribe(context.Background(), "orders")
	m := <-msgs
	fmt.Println(m.UUID, string(m.Payload))
	m.Ack()
	// Output:
	// id-1 A-1
}

func ExampleJournal_Scan() {
	j, _ := replay.Open(replay.Config{})
	defer j.Close()
	for _, order := range []string{"A-1", "A-2", "A-3"} {
		_ = j.Publish("orders", message.NewMessage("id-"+order, []byte(order)))
	}

	// Scan reads what was appended in [from, to), here everything; zero
	// times are open ends. It is how a replay's dry run counts.
	n := 0
	err := j.Scan(context.Background(), "orders", time.Time{}, time.Time{}, func(r replay.Record) bool {
		fmt.Println(r.Offset, r.UUID, string(r.Payload))
		n++
		return true
	})
	fmt.Println(n, "records", err)
	// Output:
	// 1 id-A-1 A-1
	// 2 id-A-2 A-2
	// 3 id-A-3 A-3
	// 3 records <nil>
}
