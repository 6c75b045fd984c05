// Package pgmigrate creates and upgrades sinkbus's tables in a PostgreSQL
// schema. Each part of sinkbus that keeps state in the database (the
// journal, and whatever comes to live beside it) is a component with its own
// numbered steps; the schema records, per component, the last step applied.
//
// Migrate is idempotent and safe when several processes start at once: every
// step of one call runs in one transaction that first takes a transaction
// advisory lock for the schema (which PgBouncer's transaction pooling keeps),
// so one process applies the steps and the others find them applied.
package pgmigrate

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Step is one migration. SQL may hold several statements; {{schema}} in it
// stands for the quoted schema name.
type Step struct {
	Version int
	SQL     string
}

// ErrTooNew is returned when the database holds steps of a component that
// this build does not know: a newer sinkbus migrated it.
var ErrTooNew = errors.New("sinkbus: database schema is newer than this sinkbus")

// Migrate applies the steps of component that the schema does not have yet,
// in order, all in one transaction, creating the schema when missing. steps
// must be numbered 1, 2, 3...
func Migrate(ctx context.Context, pool *pgxpool.Pool, schema, component string, steps []Step) error {
	for i, s := range steps {
		if s.Version != i+1 {
			return fmt.Errorf("sinkbus: migration %d of %s is numbered %d", i+1, component, s.Version)
		}
	}
	q := pgx.Identifier{schema}.Sanitize()
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", LockKey("migrate", schema)); err != nil {
			return err
		}
		// CREATE ... IF NOT EXISTS is not safe against a concurrent creation
		// by itself; under the lock it is.
		if _, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+q); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+q+`.schema_migrations (
			component  text PRIMARY KEY,
			version    integer NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now()
		)`); err != nil {
			return err
		}
		var have int
		err := tx.QueryRow(ctx, "SELECT version FROM "+q+".schema_migrations WHERE component = $1", component).Scan(&have)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if have > len(steps) {
			return fmt.Errorf("%w: %s.%s is at version %d, this build knows %d", ErrTooNew, schema, component, have, len(steps))
		}
		for _, s := range steps[have:] {
			if _, err := tx.Exec(ctx, strings.ReplaceAll(s.SQL, "{{schema}}", q)); err != nil {
				return fmt.Errorf("sinkbus: migration %d of %s: %w", s.Version, component, err)
			}
		}
		if have == len(steps) {
			return nil
		}
		_, err = tx.Exec(ctx, `INSERT INTO `+q+`.schema_migrations (component, version) VALUES ($1, $2)
			ON CONFLICT (component) DO UPDATE SET version = excluded.version, applied_at = now()`, component, len(steps))
		return err
	})
}

// LockKey returns an advisory lock key for a purpose within a schema, so
// that two schemas on one database never wait for each other.
func LockKey(purpose, schema string) int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte("sinkbus\x00" + purpose + "\x00" + schema))
	return int64(h.Sum64())
}
