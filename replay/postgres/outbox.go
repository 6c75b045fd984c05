package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sinkbus/sinkbus/replay"
)

// The transactional outbox: the application's own transaction inserts the
// records beside its rows, and they commit or roll back together. Nothing
// else is needed of the writer: records are ordered once their transaction
// has ended (order.go), whoever inserted them. The insert is followed, in
// the same transaction, by a notification that the server sends at commit
// only: every process sharing the schema orders the topic then and wakes its
// readers, even when the process that committed died right after. The poll
// orders it too, should no process be listening.
//
// The statement uses scalar parameters only (one row of values per record,
// metadata as JSON text), so that any database/sql driver for PostgreSQL
// can send it, not only pgx's.

// Execer runs one statement in the application's transaction.
type Execer func(ctx context.Context, sql string, args ...any) error

// PgxTx is the Execer of a pgx transaction.
func PgxTx(tx pgx.Tx) Execer {
	return func(ctx context.Context, sql string, args ...any) error {
		_, err := tx.Exec(ctx, sql, args...)
		return err
	}
}

// SQLTx is the Execer of a database/sql transaction on PostgreSQL.
func SQLTx(tx *sql.Tx) Execer {
	return func(ctx context.Context, sql string, args ...any) error {
		_, err := tx.ExecContext(ctx, sql, args...)
		return err
	}
}

// orderRequest is the notification payload's first line that asks every
// listener to order the topic on the second.
const orderRequest = "!order"

// AppendTx inserts recs into topic within the transaction exec runs in,
// appended at at. Their offsets and times are given once the transaction
// has committed and they are ordered, so recs are not changed.
func (s *Storage) AppendTx(ctx context.Context, exec Execer, topic string, recs []*replay.Record, at time.Time) error {
	if len(recs) == 0 {
		return nil
	}
	c := &appendCall{topic: topic, recs: recs}
	if err := c.encode(); err != nil {
		return err
	}
	at = at.UTC().Truncate(time.Microsecond)
	// The topic's row and the day's partition are made outside the
	// application's transaction: they must exist whatever it does.
	err := s.call(func(ctx context.Context) error {
		if err := s.ensureTopic(ctx, topic); err != nil {
			return err
		}
		return s.ensureDay(ctx, at)
	})
	if err != nil {
		return fmt.Errorf("sinkbus: postgres journal append: %w", err)
	}
	var q strings.Builder
	q.WriteString("INSERT INTO " + s.q.schema + ".journal_records (topic, idx, appended_at, uuid, metadata, payload) VALUES ")
	args := make([]any, 0, 5*len(recs)+1)
	args = append(args, topic, at)
	for i, r := range recs {
		var md any
		if len(r.Metadata) > 0 {
			b, err := json.Marshal(r.Metadata)
			if err != nil {
				return err
			}
			md = string(b)
		}
		payload := r.Payload
		if payload == nil {
			payload = []byte{}
		}
		if i > 0 {
			q.WriteString(", ")
		}
		n := len(args)
		fmt.Fprintf(&q, "($1, %d, $2, $%d, $%d::text::jsonb, $%d)", i, n+1, n+2, n+3)
		args = append(args, r.UUID, md, payload)
	}
	if err := exec(ctx, q.String(), args...); err != nil {
		return fmt.Errorf("sinkbus: postgres journal append in transaction: %w", err)
	}
	if err := exec(ctx, "SELECT pg_notify($1, $2)", s.channel, orderRequest+"\n"+topic); err != nil {
		return fmt.Errorf("sinkbus: postgres journal append in transaction: %w", err)
	}
	return nil
}

// requestOrder has the orderer order topic: records of a transaction this
// process did not insert have committed.
func (s *Storage) requestOrder(topic string) {
	s.ord.mu.Lock()
	if s.ord.asked == nil {
		s.ord.asked = make(map[string]bool)
	}
	s.ord.asked[topic] = true
	s.ord.mu.Unlock()
	select {
	case s.ord.kick <- struct{}{}:
	default:
	}
}

// orderAsked orders the topics requestOrder named; what an older open
// transaction still holds back the poll orders later.
func (s *Storage) orderAsked() {
	s.ord.mu.Lock()
	asked := s.ord.asked
	s.ord.asked = nil
	s.ord.mu.Unlock()
	for topic := range asked {
		n, _, err := s.order(topic, nil)
		if err != nil {
			s.log.Error("Cannot order journal records", err, nil)
			continue
		}
		if n > 0 {
			s.wakeReaders(topic)
		}
	}
}
