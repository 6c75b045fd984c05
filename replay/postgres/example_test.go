package postgres_test

import (
	"context"
	"fmt"
	"os"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sinkbus/sinkbus/replay"
	"github.com/sinkbus/sinkbus/replay/postgres"
)

// The journal on PostgreSQL: every replica of the application opens it on
// the same database and schema, and each consumer group reads from its
// cursor there. (It needs a server, so it is compiled, not run.)
func ExampleOpen() {
	ctx := context.Background()
	store, err := postgres.Open(ctx, postgres.Config{
		URL:    os.Getenv("SINKBUS_POSTGRES_URL"), // or Pool: the application's *pgxpool.Pool
		Schema: "sinkbus",                         // created and migrated when missing
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	j, err := replay.Open(replay.Config{Storage: store})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer j.Close() // closes the storage too

	// Publish returns once the insert is committed; concurrent calls share
	// one insert and one commit.
	if err := j.Publish("orders", message.NewMessage("01J0000000000000000000000A", []byte(`{"order":"A-1"}`))); err != nil {
		fmt.Println(err)
		return
	}
	msgs, err := j.Consumer(replay.ConsumerConfig{Group: "erp", FromOldest: true}).Subscribe(ctx, "orders")
	if err != nil {
		fmt.Println(err)
		return
	}
	m := <-msgs // also when another replica published it: LISTEN/NOTIFY wakes this one
	fmt.Println(string(m.Payload))
	m.Ack()
}
