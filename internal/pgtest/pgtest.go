// Package pgtest gives each test a PostgreSQL schema of its own, on the
// server SINKBUS_POSTGRES_URL names, and drops it when the test ends, so that
// tests run in parallel and leave nothing behind.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sinkbus/sinkbus/internal/testenv"
)

// URLVar names the environment variable that points the tests at
// PostgreSQL (scripts/test-servers.sh sets it).
const URLVar = "SINKBUS_POSTGRES_URL"

// URL returns the server's URL, or skips (fails, in CI) as testenv.Server.
func URL(t testing.TB) string {
	t.Helper()
	return testenv.Server(t, URLVar)
}

var (
	poolOnce sync.Once
	pool     *pgxpool.Pool
	poolErr  error
)

// Pool returns a pool shared by the test binary's tests.
func Pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	url := URL(t)
	poolOnce.Do(func() {
		cfg, err := pgxpool.ParseConfig(url)
		if err != nil {
			poolErr = err
			return
		}
		cfg.MaxConns = 12
		pool, poolErr = pgxpool.NewWithConfig(context.Background(), cfg)
	})
	if poolErr != nil {
		t.Fatalf("%s: %v", URLVar, poolErr)
	}
	return pool
}

// Schema returns a new schema name for t, which it drops (with everything
// in it) when t ends. The schema itself is not created: the code under test
// creates it.
func Schema(t testing.TB) string {
	t.Helper()
	p := Pool(t)
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := "test_" + strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			return r
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return '_'
	}, t.Name())
	if len(name) > 40 {
		name = name[:40]
	}
	name += "_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		_, err := p.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE")
		if err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	})
	return name
}
