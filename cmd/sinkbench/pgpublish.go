package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sinkbus/sinkbus/cmd/sinkbench/internal/bench"
	"github.com/sinkbus/sinkbus/replay"
	"github.com/sinkbus/sinkbus/replay/postgres"
)

func init() {
	register(benchCase{
		name: "pg-publish",
		about: "durable Journal.Publish into PostgreSQL (replay/postgres: concurrent publishes share one insert and one commit, " +
			"then get their offsets), 64 publishers, 1 KiB events with the bus's three metadata keys, vs 64 goroutines each " +
			"inserting the same rows (uuid, metadata jsonb, payload bytea) one per transaction through a pool of 64 connections; " +
			"both in a fresh schema on SINKBUS_POSTGRES_URL, dropped at the end",
		setup: setupPGPublish,
	})
}

func setupPGPublish(quick bool) (ours, raw func() float64, cleanup func(), skip string) {
	url := os.Getenv("SINKBUS_POSTGRES_URL")
	if url == "" {
		return nil, nil, nil, "SINKBUS_POSTGRES_URL is not set (eval \"$(scripts/test-servers.sh start)\")"
	}
	n := 60_000
	if quick {
		n = 20_000
	}
	ctx := context.Background()
	var b [4]byte
	_, _ = rand.Read(b[:])
	schema := "sinkbench_" + hex.EncodeToString(b[:])
	quoted := pgx.Identifier{schema}.Sanitize()

	cfg, err := pgxpool.ParseConfig(url)
	bench.Must(err)
	cfg.MaxConns = journalPublishers
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	bench.Must(err)
	st, err := postgres.Open(ctx, postgres.Config{URL: url, Schema: schema})
	bench.Must(err)
	j, err := replay.Open(replay.Config{Storage: st, CompactEvery: -1})
	bench.Must(err)
	metadata := map[string]string{
		"sinkbus_name": "order.created", "sinkbus_tenant": "acme",
		"sinkbus_published_at": time.Now().UTC().Format(time.RFC3339Nano),
	}
	// Both sides are bound by how many records share a WAL flush: 64
	// publishers with one publish each outstanding put at most 64 in one.
	// The server counts its flushes (pg_stat_wal, PostgreSQL 14+).
	var oursSyncs, rawSyncs walSyncs
	ours = func() float64 {
		defer oursSyncs.count(ctx, pool, n)()
		start := time.Now()
		bench.PublishFrom(journalPublishers, n, func(int) {
			m := message.NewMessage(watermill.NewULID(), message.Payload(bench.Payload1K))
			for k, v := range metadata {
				m.Metadata.Set(k, v)
			}
			bench.Must(j.Publish("events", m))
		})
		return bench.PerSecond(n, time.Since(start))
	}

	_, err = pool.Exec(ctx, "CREATE TABLE "+quoted+".raw (id bigserial PRIMARY KEY, uuid text NOT NULL, metadata jsonb, payload bytea NOT NULL)")
	bench.Must(err)
	insert := "INSERT INTO " + quoted + ".raw (uuid, metadata, payload) VALUES ($1, $2, $3)"
	mdJSON, err := json.Marshal(metadata)
	bench.Must(err)
	raw = func() float64 {
		defer rawSyncs.count(ctx, pool, n)()
		start := time.Now()
		bench.PublishFrom(journalPublishers, n, func(int) {
			_, err := pool.Exec(ctx, insert, watermill.NewULID(), mdJSON, []byte(bench.Payload1K))
			bench.Must(err)
		})
		return bench.PerSecond(n, time.Since(start))
	}

	cleanup = func() {
		if j.Head("events") == 1 {
			fmt.Fprintln(os.Stderr, "sinkbench: pg-publish stored nothing")
		}
		fmt.Printf("case=pg-publish records_per_wal_flush ours=%s raw=%s\n", &oursSyncs, &rawSyncs)
		bench.Must(j.Close())
		_, err := pool.Exec(ctx, "DROP SCHEMA "+quoted+" CASCADE")
		bench.Must(err)
		pool.Close()
	}
	return ours, raw, cleanup, ""
}

// walSyncs adds up records and the server's WAL flushes over rounds.
type walSyncs struct{ records, syncs int64 }

// count reads the flush counter now, and returns what adds up at the end
// of the round (nothing when the server does not keep the counter).
func (w *walSyncs) count(ctx context.Context, pool *pgxpool.Pool, records int) func() {
	read := func() (int64, bool) {
		var n int64
		err := pool.QueryRow(ctx, "SELECT wal_sync FROM pg_stat_wal").Scan(&n)
		return n, err == nil
	}
	before, ok := read()
	return func() {
		if after, ok2 := read(); ok && ok2 {
			w.records += int64(records)
			w.syncs += after - before
		}
	}
}

func (w *walSyncs) String() string {
	if w.syncs == 0 {
		return "?"
	}
	return fmt.Sprintf("%.1f", float64(w.records)/float64(w.syncs))
}
