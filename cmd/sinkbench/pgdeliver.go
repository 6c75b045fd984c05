package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/cmd/sinkbench/internal/bench"
	"github.com/sinkbus/sinkbus/sinks/webhook"
)

func init() {
	register(benchCase{
		name: "pg-deliver",
		about: "publish → PostgreSQL journal (Config.Postgres) → webhook: a backlog of 40,000 1 KiB events (10,000 with -quick) " +
			"published by 64 publishers while the signed webhook integration (concurrency 8) was stopped, then drained: events " +
			"over the time from Start to the last receipt, vs the same on the segment journal in a DataDir; a fresh schema " +
			"(and DataDir) per round, on SINKBUS_POSTGRES_URL; target >= 0.5",
		setup: setupPGDeliver,
	})
	register(benchCase{
		name: "pg-replicas",
		about: "10 webhook integrations (concurrency 8 each) draining a backlog of 10,000 1 KiB events (2,000 with -quick) " +
			"from PostgreSQL, delivered by 2 replica processes (this binary re-executed) vs by 1; a fresh schema per round, " +
			"the time from Start to the last of the 10 × n receipts; on this machine's 2 cores, shared with PostgreSQL and the " +
			"receiver: no target, it says what a second replica gives here",
		setup: setupPGReplicas,
	})
}

func pgURL() (string, string) {
	url := os.Getenv("SINKBUS_POSTGRES_URL")
	if url == "" {
		return "", "SINKBUS_POSTGRES_URL is not set (eval \"$(scripts/test-servers.sh start)\")"
	}
	return url, ""
}

// pgSchema returns a fresh schema name and its dropping.
func pgSchema(pool *pgxpool.Pool) (string, func()) {
	var b [4]byte
	_, _ = rand.Read(b[:])
	schema := "sinkbench_" + hex.EncodeToString(b[:])
	return schema, func() {
		_, err := pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
		bench.Must(err)
	}
}

func setupPGDeliver(quick bool) (ours, raw func() float64, cleanup func(), skip string) {
	url, skip := pgURL()
	if skip != "" {
		return nil, nil, nil, skip
	}
	n := 40_000
	if quick {
		n = 10_000
	}
	pool, err := pgxpool.New(context.Background(), url)
	bench.Must(err)
	dir, err := os.MkdirTemp("", "sinkbench-pg-deliver-")
	bench.Must(err)
	recv := bench.NewReceiver()
	pgEP, segEP := recv.Endpoint("postgres"), recv.Endpoint("datadir")
	var pgCost, segCost bench.Cost
	ours = func() float64 {
		schema, drop := pgSchema(pool)
		defer drop()
		return drainRound(bus.Config{Postgres: &bus.Postgres{Pool: pool, Schema: schema}}, pgEP, n, &pgCost)
	}
	raw = func() float64 {
		data := filepath.Join(dir, "bus")
		defer func() { bench.Must(os.RemoveAll(data)) }()
		return drainRound(bus.Config{DataDir: data}, segEP, n, &segCost)
	}
	cleanup = func() {
		recv.Close()
		pool.Close()
		bench.Must(os.RemoveAll(dir))
		fmt.Printf("case=pg-deliver backlog=%d cost postgres=%s datadir=%s\n", n, &pgCost, &segCost)
	}
	return ours, raw, cleanup, ""
}

// replicaEnv makes the sinkbench binary a replica on the schema it names
// (see runReplica), instead of the benchmark.
const replicaEnv = "SINKBENCH_PG_REPLICA_SCHEMA"

func init() {
	if schema := os.Getenv(replicaEnv); schema != "" {
		runReplica(schema)
		os.Exit(0)
	}
}

// runReplica runs a bus on schema, prints "ready", and closes it when its
// stdin ends.
func runReplica(schema string) {
	b, stop := bench.RunBus(bus.Config{AllowPrivateNetworks: true,
		Postgres: &bus.Postgres{URL: os.Getenv("SINKBUS_POSTGRES_URL"), Schema: schema}})
	_ = b
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	stop()
}

func setupPGReplicas(quick bool) (ours, raw func() float64, cleanup func(), skip string) {
	url, skip := pgURL()
	if skip != "" {
		return nil, nil, nil, skip
	}
	n := 10_000
	if quick {
		n = 2_000
	}
	pool, err := pgxpool.New(context.Background(), url)
	bench.Must(err)
	recv := bench.NewReceiver()
	two, one := recv.Endpoint("two"), recv.Endpoint("one")
	ours = func() float64 { return replicasRound(pool, two.URL, two, 2, n) }
	raw = func() float64 { return replicasRound(pool, one.URL, one, 1, n) }
	cleanup = func() {
		recv.Close()
		pool.Close()
	}
	return ours, raw, cleanup, ""
}

// replicasRound publishes n events for 10 stopped integrations from a bus
// that does not deliver, starts `replicas` replica processes, starts the
// integrations and returns the deliveries per second until the last
// receipt.
func replicasRound(pool *pgxpool.Pool, url string, ep *bench.Endpoint, replicas, n int) float64 {
	ctx := context.Background()
	schema, drop := pgSchema(pool)
	defer drop()
	b, err := bus.New(bus.Config{AllowPrivateNetworks: true, Postgres: &bus.Postgres{Pool: pool, Schema: schema}})
	bench.Must(err)
	defer func() { bench.Must(b.Close()) }()
	const integrations = 10
	for i := range integrations {
		_, err := b.Integrations().Create(ctx, bus.Integration{ID: fmt.Sprintf("erp-%d", i), Status: bus.Stopped,
			Concurrency: bench.Concurrency, Sink: webhook.Config{URL: url, SecretKey: bench.WebhookSecret, AllowPrivateNetworks: true}})
		bench.Must(err)
	}
	bench.PublishFrom(journalPublishers, n, func(int) { bench.Must(b.Publish(ctx, bench.Order)) })

	self, err := os.Executable()
	bench.Must(err)
	for range replicas {
		cmd := exec.Command(self)
		cmd.Env = append(os.Environ(), replicaEnv+"="+schema)
		cmd.Stderr = os.Stderr
		stdin, err := cmd.StdinPipe()
		bench.Must(err)
		stdout, err := cmd.StdoutPipe()
		bench.Must(err)
		bench.Must(cmd.Start())
		lines := bufio.NewScanner(stdout)
		if !lines.Scan() || lines.Text() != "ready" {
			bench.Must(fmt.Errorf("pg-replicas: a replica did not start"))
		}
		defer func() { _ = stdin.Close(); _ = cmd.Wait() }()
	}

	done := ep.Expect(int64(n * integrations))
	start := time.Now()
	for i := range integrations {
		_, err := b.Integrations().Start(ctx, fmt.Sprintf("erp-%d", i))
		bench.Must(err)
	}
	bench.Wait(done, bench.RoundLimit, func() string {
		return fmt.Sprintf("pg-replicas: the receiver counted %d requests in all", ep.Count())
	})
	return bench.PerSecond(n*integrations, time.Since(start))
}
