package bus_test

import (
	"context"
	"log"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sinkbus/sinkbus/bus"
)

// Every replica of the application opens its bus on the same database: the
// integrations, journal, logs and rejected events are shared, and each
// running integration is delivered by one replica at a time.
func ExamplePostgres() {
	pool, err := pgxpool.New(context.Background(), os.Getenv("SINKBUS_POSTGRES_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	b, err := bus.New(bus.Config{Postgres: &bus.Postgres{Pool: pool, Schema: "sinkbus"}})
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	go func() { _ = b.Run(context.Background()) }()
}

// An order and its event commit together, or neither does.
func ExampleBus_PublishTx() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("SINKBUS_POSTGRES_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	b, err := bus.New(bus.Config{Postgres: &bus.Postgres{Pool: pool}})
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	tx, err := pool.Begin(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "INSERT INTO orders (id) VALUES ($1)", "o-1"); err != nil {
		log.Fatal(err)
	}
	if err := b.PublishTx(ctx, tx, bus.Event{ID: "o-1", Name: "order.created", Payload: []byte(`{"id":"o-1"}`)}); err != nil {
		log.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		log.Fatal(err)
	}
}
