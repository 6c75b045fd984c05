package bus

import (
	"context"
	"database/sql"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/sinkbus/sinkbus/replay"
	"github.com/sinkbus/sinkbus/replay/postgres"
)

// ErrNoOutbox is returned by PublishTx and PublishSQLTx on a bus without
// Config.Postgres: only a journal in the application's database can share
// its transactions.
var ErrNoOutbox = errors.New("sinkbus: publishing in a transaction needs Config.Postgres")

// PublishTx publishes events within the application's own pgx transaction
// on the bus's database (the transactional outbox): they are journalled
// with its rows, and delivered once it commits, even if the process dies
// right after the commit; a transaction rolled back delivers nothing. The
// events are validated as Publish does. Every replica's consumers are woken
// at the commit; the transaction holds no lock of the bus's while open, but
// events published after it began are delivered after it ends (the journal
// orders transactions as they began), so keep it short.
func (b *Bus) PublishTx(ctx context.Context, tx pgx.Tx, events ...Event) error {
	return b.publishTx(ctx, postgres.PgxTx(tx), events)
}

// PublishSQLTx is PublishTx for a database/sql transaction (any driver of
// PostgreSQL: pgx's stdlib, lib/pq).
func (b *Bus) PublishSQLTx(ctx context.Context, tx *sql.Tx, events ...Event) error {
	return b.publishTx(ctx, postgres.SQLTx(tx), events)
}

func (b *Bus) publishTx(ctx context.Context, exec postgres.Execer, events []Event) error {
	pg, ok := b.pg.(*pgBackend)
	if !ok {
		return ErrNoOutbox
	}
	return b.publish(ctx, events, func(ctx context.Context, recs []*replay.Record) error {
		return pg.journal.AppendTx(ctx, exec, Topic, recs, b.cfg.Clock.Now())
	})
}
