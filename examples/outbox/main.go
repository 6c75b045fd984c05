// Command outbox is the transactional outbox on PostgreSQL: an order row
// and its order.created event are written in one transaction, so that
// both exist or neither does. The bus keeps its journal in the same
// database (Config.Postgres) and delivers the committed event to an
// in-process handler; the order whose transaction rolls back is not
// delivered. By default it talks to the PostgreSQL server
// scripts/test-servers.sh starts; SINKBUS_POSTGRES_URL points it
// elsewhere.
//
//	go run ./examples/outbox
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sinkbus/sinkbus/bus"
)

func main() {
	url := os.Getenv("SINKBUS_POSTGRES_URL")
	if url == "" {
		url = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run(ctx, os.Stdout, url, "sinkbus_example_outbox"); err != nil {
		log.Fatal(err)
	}
}

// run places two orders in schema, one rolled back, then one committed,
// and writes what the handler receives to out until the committed one's
// event.
func run(ctx context.Context, out io.Writer, url, schema string) error {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()
	// The application's own table, beside the bus's tables in one schema
	// here (any schema of the database will do).
	orders := pgx.Identifier{schema, "orders"}.Sanitize()
	if _, err := pool.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize()); err != nil {
		return err
	}
	if _, err := pool.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+orders+" (id text PRIMARY KEY, total_cents int NOT NULL)"); err != nil {
		return err
	}

	// One delivery at a time: events arrive in the order they committed.
	b, err := bus.New(bus.Config{Postgres: &bus.Postgres{Pool: pool, Schema: schema}, Concurrency: 1})
	if err != nil {
		return err
	}
	defer b.Close()
	received := make(chan bus.Event, 10)
	err = b.Handle("fulfilment", []string{"order.created"}, func(_ context.Context, e bus.Event) error {
		received <- e
		return nil
	})
	if err != nil {
		return err
	}
	go func() { _ = b.Run(ctx) }()

	id := fmt.Sprintf("o-%d", time.Now().UnixNano())
	if err := placeOrder(ctx, pool, b, orders, id+"-cancelled", 100, true); err != nil {
		return err
	}
	fmt.Fprintf(out, "order %s-cancelled rolled back with its event\n", id)
	if err := placeOrder(ctx, pool, b, orders, id, 4200, false); err != nil {
		return err
	}
	fmt.Fprintf(out, "order %s committed with its event\n", id)

	for {
		select {
		case e := <-received:
			fmt.Fprintf(out, "received %s %s %s\n", e.Name, e.ID, e.Payload)
			if e.ID == id {
				return nil
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// placeOrder inserts an order and publishes its event in one transaction,
// then commits it, or rolls it back when abort is set.
func placeOrder(ctx context.Context, pool *pgxpool.Pool, b *bus.Bus, orders, id string, cents int, abort bool) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) // after a commit, does nothing
	if _, err := tx.Exec(ctx, "INSERT INTO "+orders+" (id, total_cents) VALUES ($1, $2)", id, cents); err != nil {
		return err
	}
	err = b.PublishTx(ctx, tx, bus.Event{ID: id, Name: "order.created",
		Payload: fmt.Appendf(nil, `{"order_id":%q,"total_cents":%d}`, id, cents)})
	if err != nil {
		return err
	}
	if abort {
		return tx.Rollback(ctx)
	}
	return tx.Commit(ctx)
}
