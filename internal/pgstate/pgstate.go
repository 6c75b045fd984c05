// Package pgstate keeps the bus's own state in PostgreSQL, beside the
// journal (replay/postgres) in the same schema: the integrations, their
// logs and rejected events. The replicas of an application share it.
//
// Writes that a delivery makes (log entries, rejected events) can be fenced:
// they carry the fencing token of the lease under which the integration is
// delivered (the journal's journal_leases, see replay/postgres/lease.go),
// and the statement that writes checks it, so a replica that lost the lease
// writes nothing.
package pgstate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sinkbus/sinkbus/internal/pgmigrate"
	"github.com/sinkbus/sinkbus/middleware"
)

// ErrFenced is returned by a fenced write of a replica that does not hold
// the integration's lease.
var ErrFenced = errors.New("sinkbus: not written: the integration's lease is lost")

const component = "bus"

// migrations of the bus's tables. journal_leases, which fenced writes
// check, is the journal's (replay/postgres): a Store is opened after it.
var migrations = []pgmigrate.Step{{Version: 1, SQL: `
CREATE TABLE {{schema}}.integrations (
	ref        text        PRIMARY KEY,
	doc        jsonb       NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE {{schema}}.integration_log (
	ref   text   NOT NULL,
	seq   bigint GENERATED ALWAYS AS IDENTITY,
	entry jsonb  NOT NULL,
	PRIMARY KEY (ref, seq)
);
CREATE TABLE {{schema}}.rejected_events (
	ref      text   NOT NULL,
	event_id text   NOT NULL,
	seq      bigint NOT NULL,
	entry    jsonb  NOT NULL,
	PRIMARY KEY (ref, event_id)
);
CREATE INDEX ON {{schema}}.rejected_events (ref, seq);
CREATE SEQUENCE {{schema}}.rejected_seq;
CREATE TABLE {{schema}}.requests (
	id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	ref        text        NOT NULL,
	kind       text        NOT NULL,
	body       jsonb       NOT NULL,
	taken_by   text,
	answer     jsonb,
	ended      jsonb,
	created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON {{schema}}.requests (ref) WHERE taken_by IS NULL;
CREATE TABLE {{schema}}.ingest_seen (
	uid       text        PRIMARY KEY,
	event     bytea       NOT NULL,
	at        timestamptz NOT NULL DEFAULT clock_timestamp(),
	published boolean     NOT NULL DEFAULT false
);
CREATE INDEX ON {{schema}}.ingest_seen (at);
`}, {Version: 2, SQL: `
CREATE TABLE {{schema}}.replays (
	id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	ref        text        NOT NULL,
	job        jsonb       NOT NULL,
	state      text        NOT NULL DEFAULT 'running',
	outcome    jsonb,
	created_at timestamptz NOT NULL DEFAULT now(),
	ended_at   timestamptz
);
CREATE INDEX ON {{schema}}.replays (ref) WHERE state = 'running';
ALTER TABLE {{schema}}.integrations ADD COLUMN version bigint NOT NULL DEFAULT 1;
`}}

// Store is the bus's state in one schema. Safe for concurrent use.
type Store struct {
	pool     *pgxpool.Pool
	schema   string // quoted
	channel  string
	logSize  int
	rejSize  int
	timeout  time.Duration
	q        queries
	fenceSQL string
}

type queries struct {
	loadIntegrations, upsertIntegration, deleteIntegration string
	appendLog, entries, dropLog                            string
	putRejected, listRejected, getRejected                 string
	deleteRejected, dropRejected                           string
	abortReplays, dropReplays, endReplay                   string
}

// Open migrates the bus's tables in schema and returns its store. Entries
// beyond logSize per integration, and rejected events beyond rejectedSize,
// are removed as new ones come.
func Open(ctx context.Context, pool *pgxpool.Pool, schema string, logSize, rejectedSize int) (*Store, error) {
	if err := pgmigrate.Migrate(ctx, pool, schema, component, migrations); err != nil {
		return nil, fmt.Errorf("sinkbus: postgres schema %s: %w", schema, err)
	}
	q := pgx.Identifier{schema}.Sanitize()
	s := func(sql string) string { return strings.ReplaceAll(sql, "{{schema}}", q) }
	// $2 is the writer's token, -1 for a write that is not fenced.
	fence := s(`($2::bigint < 0 OR NOT EXISTS (SELECT 1 FROM {{schema}}.journal_leases WHERE grp = $1)
		OR EXISTS (SELECT 1 FROM {{schema}}.journal_leases
			WHERE grp = $1 AND token = $2 AND expires_at > clock_timestamp() FOR SHARE))`)
	st := &Store{pool: pool, schema: q, channel: schema + "_bus", logSize: logSize, rejSize: rejectedSize,
		timeout: 10 * time.Second}
	st.q = queries{
		loadIntegrations: s(`SELECT ref, doc, version FROM {{schema}}.integrations ORDER BY ref`),
		// The row is at $3 (0: there is none), else nothing is written;
		// it returns the version the row is at, and whether the document
		// changed.
		upsertIntegration: s(`WITH prev AS (
				SELECT doc, version FROM {{schema}}.integrations WHERE ref = $1 FOR UPDATE
			), up AS (
				INSERT INTO {{schema}}.integrations AS i (ref, doc) SELECT $1, $2
					WHERE coalesce((SELECT version FROM prev), 0) = $3
				ON CONFLICT (ref) DO UPDATE SET doc = excluded.doc, updated_at = now(), version = i.version + 1
					WHERE i.doc IS DISTINCT FROM excluded.doc
				RETURNING version
			) SELECT coalesce((SELECT version FROM up), (SELECT version FROM prev), 0),
				coalesce((SELECT version FROM prev), 0) = $3,
				EXISTS (SELECT 1 FROM up)`),
		deleteIntegration: s(`DELETE FROM {{schema}}.integrations WHERE NOT (ref = ANY($1::text[]))`),
		appendLog: s(`WITH ins AS (
				INSERT INTO {{schema}}.integration_log (ref, entry) SELECT $1, $3 WHERE ` + fence + ` RETURNING seq
			), ` + trimLog("ins", "$4") + ` SELECT count(*) FROM ins`),
		entries: s(`SELECT entry FROM {{schema}}.integration_log WHERE ref = $1 ORDER BY seq DESC LIMIT $2`),
		dropLog: s(`DELETE FROM {{schema}}.integration_log WHERE ref = $1`),
		putRejected: s(`WITH ins AS (
				INSERT INTO {{schema}}.rejected_events (ref, event_id, seq, entry)
				SELECT $1, $3, nextval('{{schema}}.rejected_seq'), $4 WHERE ` + fence + `
				ON CONFLICT (ref, event_id) DO UPDATE SET seq = excluded.seq, entry = excluded.entry
				RETURNING seq
			), evicted AS (
				DELETE FROM {{schema}}.rejected_events WHERE ref = $1 AND EXISTS (SELECT 1 FROM ins) AND event_id <> $3
					AND seq NOT IN (SELECT seq FROM {{schema}}.rejected_events WHERE ref = $1 AND event_id <> $3
						ORDER BY seq DESC LIMIT $5 - 1)
				RETURNING entry
			) SELECT (SELECT count(*) FROM ins), coalesce((SELECT array_agg(entry) FROM evicted), '{}')`),
		listRejected:   s(`SELECT entry FROM {{schema}}.rejected_events WHERE ref = $1 ORDER BY seq DESC`),
		getRejected:    s(`SELECT entry FROM {{schema}}.rejected_events WHERE ref = $1 AND event_id = $2`),
		deleteRejected: s(`DELETE FROM {{schema}}.rejected_events WHERE ref = $1 AND event_id = $2`),
		dropRejected:   s(`DELETE FROM {{schema}}.rejected_events WHERE ref = $1`),
		// A replay's cursor goes with it (the journal's row of its group).
		abortReplays: s(`WITH ended AS (
				UPDATE {{schema}}.replays SET state = 'aborted', outcome = $2, ended_at = now()
				WHERE ref = $1 AND state = 'running' RETURNING ref, id
			) DELETE FROM {{schema}}.journal_cursors WHERE grp IN (SELECT ` + groupSQL + ` FROM ended)`),
		dropReplays: s(`WITH gone AS (
				DELETE FROM {{schema}}.replays WHERE ref = $1 RETURNING ref, id
			) DELETE FROM {{schema}}.journal_cursors WHERE grp IN (SELECT ` + groupSQL + ` FROM gone)`),
		// $6, when not NULL, is the log entry that says how it ended.
		endReplay: s(`WITH ended AS (
				UPDATE {{schema}}.replays SET state = $3, outcome = $4, ended_at = now()
				WHERE id = $5 AND ref = $1 AND state = 'running' AND ` + fence + ` RETURNING ref, id
			), cursor AS (
				DELETE FROM {{schema}}.journal_cursors WHERE grp IN (SELECT ` + groupSQL + ` FROM ended)
			), logged AS (
				INSERT INTO {{schema}}.integration_log (ref, entry) SELECT $1, $6::jsonb FROM ended WHERE $6::jsonb IS NOT NULL
				RETURNING seq
			), ` + trimLog("logged", "$7") + ` SELECT count(*) FROM ended`),
	}
	return st, nil
}

// trimLog is the clause of a statement that inserted into ref's ($1) log
// in the clause inserted: it keeps the last size entries, the new one
// among them (the clauses see the log as it was before the statement).
func trimLog(inserted, size string) string {
	return `trim AS (
				DELETE FROM {{schema}}.integration_log WHERE ref = $1 AND EXISTS (SELECT 1 FROM ` + inserted + `) AND seq <= (
					SELECT seq FROM {{schema}}.integration_log WHERE ref = $1 ORDER BY seq DESC OFFSET ` + size + ` - 1 LIMIT 1)
			)`
}

// Channel is the notification channel on which SaveIntegrations announces
// a change.
func (s *Store) Channel() string { return s.channel }

func (s *Store) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.timeout)
}

// Integration is one saved integration: its ref, its document and its
// version, which every change moves on.
type Integration struct {
	Ref     string
	Doc     json.RawMessage
	Version int64
}

// ErrStale is returned by Put when the integration's row is at another
// version than the writer read: another replica changed it meanwhile.
var ErrStale = errors.New("sinkbus: the integration was changed by another replica meanwhile")

// LoadIntegrations returns every saved integration, by ref.
func (s *Store) LoadIntegrations(ctx context.Context) ([]Integration, error) {
	// A failed Query's error comes back from CollectRows.
	rows, _ := s.pool.Query(ctx, s.q.loadIntegrations)
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Integration])
	if err != nil {
		return nil, fmt.Errorf("sinkbus: postgres integrations: %w", err)
	}
	return out, nil
}

// Put writes one integration over the version in.Version (0: none yet)
// and tells the other replicas; it returns the version written. When the
// row is at another version it writes nothing and returns ErrStale. When
// the document changes, the integration's running replays end with
// aborted: a change of an integration aborts them, whichever replica
// delivers it, or none.
func (s *Store) Put(ctx context.Context, in Integration, aborted any) (int64, error) {
	outcome, err := json.Marshal(aborted)
	if err != nil {
		return 0, err
	}
	var version int64
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var current, changed bool
		if err := tx.QueryRow(ctx, s.q.upsertIntegration, in.Ref, in.Doc, in.Version).Scan(&version, &current, &changed); err != nil {
			return err
		}
		if !current {
			return fmt.Errorf("%w: %s is at version %d, not %d", ErrStale, in.Ref, version, in.Version)
		}
		if !changed {
			return nil
		}
		if _, err := tx.Exec(ctx, s.q.abortReplays, in.Ref, outcome); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "SELECT pg_notify($1, 'integrations')", s.channel)
		return err
	})
	return version, err
}

// Claim writes integration in.Ref if no row holds that ref yet, and
// reports whether it did: of replicas creating one id at once, one claims
// it.
func (s *Store) Claim(ctx context.Context, in Integration) (bool, error) {
	ct, err := s.pool.Exec(ctx, "INSERT INTO "+s.schema+".integrations (ref, doc) VALUES ($1, $2) ON CONFLICT (ref) DO NOTHING", in.Ref, in.Doc)
	if err != nil {
		return false, fmt.Errorf("sinkbus: postgres integrations: %w", err)
	}
	return ct.RowsAffected() == 1, nil
}

// Delete removes the integration ref and tells the other replicas.
func (s *Store) Delete(ctx context.Context, ref string) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, s.q.deleteIntegration+" AND ref = $2", []string{}, ref); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, s.q.dropReplays, ref); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "SELECT pg_notify($1, 'integrations')", s.channel)
		return err
	})
}

// Exclusive runs fn while no other replica runs an Exclusive fn of the
// same name on this schema. The lock is a transaction-scoped advisory lock:
// unlike a session lock it holds through PgBouncer's transaction pooling,
// and it ends with the transaction whatever becomes of the process.
func (s *Store) Exclusive(ctx context.Context, name string, fn func() error) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", s.schema+"."+name); err != nil {
			return fmt.Errorf("sinkbus: postgres lock %s: %w", name, err)
		}
		return fn()
	})
}

// Notify tells the other replicas that integration ref needs their
// attention (a replay or a retry asked here); msg is the payload's rest.
func (s *Store) Notify(ctx context.Context, msg string) error {
	_, err := s.pool.Exec(ctx, "SELECT pg_notify($1, $2)", s.channel, msg)
	return err
}

// Log is the store's logs as a middleware.LogStore whose writes carry the
// token token returns for an integration: fenced when it returns >= 0
// (0: this replica holds no lease of it), not when it returns -1.
func (s *Store) Log(token func(ref string) int64) middleware.LogStore {
	return logStore{s, token}
}

// Rejected is the store's rejected events as a middleware.RejectedStore,
// fenced as Log says.
func (s *Store) Rejected(token func(ref string) int64) middleware.RejectedStore {
	return rejectedStore{s, token}
}

type logStore struct {
	s     *Store
	token func(string) int64
}

func (l logStore) Append(id string, e middleware.LogEntry) error {
	doc, err := json.Marshal(e)
	if err != nil {
		return err
	}
	ctx, cancel := l.s.ctx()
	defer cancel()
	var n int64
	if err := l.s.pool.QueryRow(ctx, l.s.q.appendLog, id, l.token(id), doc, l.s.logSize).Scan(&n); err != nil {
		return fmt.Errorf("sinkbus: postgres integration log: %w", err)
	}
	if n == 0 {
		return ErrFenced
	}
	return nil
}

func (l logStore) Entries(id string) ([]middleware.LogEntry, error) {
	ctx, cancel := l.s.ctx()
	defer cancel()
	rows, err := l.s.pool.Query(ctx, l.s.q.entries, id, l.s.logSize)
	if err != nil {
		return nil, fmt.Errorf("sinkbus: postgres integration log: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[middleware.LogEntry])
}

func (l logStore) Drop(id string) error { return l.s.exec(l.s.q.dropLog, id) }

func (s *Store) exec(sql string, args ...any) error {
	ctx, cancel := s.ctx()
	defer cancel()
	_, err := s.pool.Exec(ctx, sql, args...)
	return err
}

type rejectedStore struct {
	s     *Store
	token func(string) int64
}

func (r rejectedStore) Put(id string, e middleware.RejectedEvent) ([]middleware.RejectedEvent, error) {
	doc, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	ctx, cancel := r.s.ctx()
	defer cancel()
	var n int64
	var evicted []middleware.RejectedEvent
	if err := r.s.pool.QueryRow(ctx, r.s.q.putRejected, id, r.token(id), e.EventID, doc, r.s.rejSize).Scan(&n, &evicted); err != nil {
		return nil, fmt.Errorf("sinkbus: postgres rejected events: %w", err)
	}
	if n == 0 {
		return nil, ErrFenced
	}
	return evicted, nil
}

func (r rejectedStore) List(id string) ([]middleware.RejectedEvent, error) {
	ctx, cancel := r.s.ctx()
	defer cancel()
	rows, err := r.s.pool.Query(ctx, r.s.q.listRejected, id)
	if err != nil {
		return nil, fmt.Errorf("sinkbus: postgres rejected events: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[middleware.RejectedEvent])
}

func (r rejectedStore) Get(id, eventID string) (middleware.RejectedEvent, error) {
	ctx, cancel := r.s.ctx()
	defer cancel()
	var e middleware.RejectedEvent
	err := r.s.pool.QueryRow(ctx, r.s.q.getRejected, id, eventID).Scan(&e)
	if errors.Is(err, pgx.ErrNoRows) {
		return e, middleware.ErrNotFound
	}
	return e, err
}

func (r rejectedStore) Delete(id, eventID string) error {
	ctx, cancel := r.s.ctx()
	defer cancel()
	ct, err := r.s.pool.Exec(ctx, r.s.q.deleteRejected, id, eventID)
	if err != nil {
		return err
	}
	if ct.RowsAffected() == 0 {
		return middleware.ErrNotFound
	}
	return nil
}

func (r rejectedStore) Drop(id string) error { return r.s.exec(r.s.q.dropRejected, id) }

// Requests carry what a replica is asked that only the replica delivering
// an integration can do (a replay, a retry of a rejected event): the
// replica asked writes a row and waits for its answer; the one holding the
// lease takes it, does it and answers in the row. (The requests' ended
// column, of the first schema, is no longer written: a replay ends in its
// own row, replays.)

// Request is one asked of the replica that delivers Ref.
type Request struct {
	ID   int64
	Ref  string
	Kind string
	Body json.RawMessage
}

// Ask writes a request and tells the replicas; it returns its id.
func (s *Store) Ask(ctx context.Context, ref, kind string, body any) (int64, error) {
	doc, err := json.Marshal(body)
	if err != nil {
		return 0, err
	}
	var id int64
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, "INSERT INTO "+s.schema+".requests (ref, kind, body) VALUES ($1, $2, $3) RETURNING id",
			ref, kind, doc).Scan(&id); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "SELECT pg_notify($1, 'request')", s.channel)
		return err
	})
	return id, err
}

// Take returns the requests not taken yet of the integrations refs,
// marking them taken by replica. Requests older than an hour, answered or
// not, are removed.
func (s *Store) Take(ctx context.Context, replica string, refs []string) ([]Request, error) {
	if _, err := s.pool.Exec(ctx, "DELETE FROM "+s.schema+".requests WHERE created_at < now() - interval '1 hour'"); err != nil {
		return nil, err
	}
	if len(refs) == 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, "UPDATE "+s.schema+".requests SET taken_by = $1 WHERE taken_by IS NULL AND ref = ANY($2) RETURNING id, ref, kind, body",
		replica, refs)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Request, error) {
		var r Request
		err := row.Scan(&r.ID, &r.Ref, &r.Kind, &r.Body)
		return r, err
	})
}

// Answer writes a request's answer.
func (s *Store) Answer(ctx context.Context, id int64, answer any) error {
	return s.setJSON(ctx, "answer", id, answer)
}

func (s *Store) setJSON(ctx context.Context, column string, id int64, v any) error {
	doc, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, "UPDATE "+s.schema+".requests SET "+column+" = $2 WHERE id = $1", id, doc)
	return err
}

// Await polls request id until its column ("answer") is set,
// or ctx ends, and decodes it into v.
func (s *Store) Await(ctx context.Context, id int64, column string, every time.Duration, v any) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		var doc []byte
		err := s.pool.QueryRow(ctx, "SELECT "+column+" FROM "+s.schema+".requests WHERE id = $1", id).Scan(&doc)
		if err != nil {
			return err
		}
		if doc != nil {
			return json.Unmarshal(doc, v)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Forget removes request id.
func (s *Store) Forget(ctx context.Context, id int64) error {
	_, err := s.pool.Exec(ctx, "DELETE FROM "+s.schema+".requests WHERE id = $1", id)
	return err
}

// The ingestion webhook's dedupe window, shared by the replicas: a uid is
// a row, reserved by the replica publishing it, kept for the window once
// published, removed when its publishing failed.

// Seen is what Reserve found of a uid reserved before.
type Seen struct {
	Event     []byte // the fingerprint it was reserved with
	Published bool   // false: being published
}

// pendingFor is how long a reservation whose replica never settled it
// (it died while publishing) holds the uid.
const pendingFor = time.Minute

// Reserve reserves uid for the event fingerprinted event, unless a
// reservation within window holds it: then it returns that one.
func (s *Store) Reserve(ctx context.Context, uid string, event []byte, window time.Duration) (owner bool, prior Seen, err error) {
	_, err = s.pool.Exec(ctx, "DELETE FROM "+s.schema+`.ingest_seen WHERE uid = $1
		AND (at < clock_timestamp() - $2 * interval '1 microsecond'
			OR NOT published AND at < clock_timestamp() - $3 * interval '1 microsecond')`,
		uid, window.Microseconds(), pendingFor.Microseconds())
	if err != nil {
		return false, prior, err
	}
	ct, err := s.pool.Exec(ctx, "INSERT INTO "+s.schema+".ingest_seen (uid, event) VALUES ($1, $2) ON CONFLICT (uid) DO NOTHING",
		uid, event)
	if err != nil {
		return false, prior, err
	}
	if ct.RowsAffected() == 1 {
		return true, prior, nil
	}
	err = s.pool.QueryRow(ctx, "SELECT event, published FROM "+s.schema+".ingest_seen WHERE uid = $1", uid).
		Scan(&prior.Event, &prior.Published)
	if errors.Is(err, pgx.ErrNoRows) { // settled as failed meanwhile: try again
		return s.Reserve(ctx, uid, event, window)
	}
	return false, prior, err
}

// Settle records the outcome of publishing uid: kept for the window when
// published, removed otherwise. It also removes what the window forgot.
func (s *Store) Settle(ctx context.Context, uid string, published bool, window time.Duration) error {
	if !published {
		_, err := s.pool.Exec(ctx, "DELETE FROM "+s.schema+".ingest_seen WHERE uid = $1", uid)
		return err
	}
	_, err := s.pool.Exec(ctx, "UPDATE "+s.schema+".ingest_seen SET published = true, at = clock_timestamp() WHERE uid = $1", uid)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, "DELETE FROM "+s.schema+".ingest_seen WHERE at < clock_timestamp() - $1 * interval '1 microsecond'",
		window.Microseconds())
	return err
}
