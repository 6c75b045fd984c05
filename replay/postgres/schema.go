package postgres

import (
	"strings"

	"github.com/sinkbus/sinkbus/internal/pgmigrate"
)

// component names the journal's line of migrations in schema_migrations.
const component = "journal"

// migrations create and upgrade the journal's tables. Append a step to
// change them; never edit one that has shipped.
//
// journal_records holds what writers insert, nothing else: a writer needs no
// lock and no counter, so a publisher of this process, of another replica,
// or (later) the application's own transaction writes the same rows. Its
// transaction id orders it; idx orders the records of one transaction and
// topic (0, 1, 2, ...); they all carry the same appended_at, the partition
// key.
//
// journal_batches says where each transaction's records of a topic sit in
// the topic's dense order: one row per transaction and topic, written by the
// orderer (order.go) once every transaction with a smaller id has ended. A
// record's offset is its batch's first_offset + idx; its Time is the batch's
// at (appended_at, raised to the previous batch's so it never decreases).
//
// journal_topics holds per topic the next offset to hand out, the horizon
// (every transaction below it is ordered), the first retained offset
// (retention's floor) and the newest batch's time.
//
// Both record tables are partitioned by day of appended_at (UTC), so that
// retention drops a day as a whole.
var migrations = []pgmigrate.Step{{Version: 1, SQL: `
CREATE TABLE {{schema}}.journal_topics (
	topic        text PRIMARY KEY,
	first_offset bigint NOT NULL DEFAULT 1,
	next_offset  bigint NOT NULL DEFAULT 1,
	horizon      xid8   NOT NULL DEFAULT '0',
	last_at      timestamptz
);
CREATE TABLE {{schema}}.journal_records (
	topic       text        NOT NULL,
	xid         xid8        NOT NULL DEFAULT pg_current_xact_id(),
	idx         integer     NOT NULL,
	appended_at timestamptz NOT NULL,
	uuid        text        NOT NULL,
	metadata    jsonb,
	payload     bytea       NOT NULL
) PARTITION BY RANGE (appended_at);
CREATE INDEX ON {{schema}}.journal_records (topic, xid, idx);
CREATE TABLE {{schema}}.journal_batches (
	topic        text        NOT NULL,
	xid          xid8        NOT NULL,
	first_offset bigint      NOT NULL,
	count        integer     NOT NULL,
	appended_at  timestamptz NOT NULL,
	at           timestamptz NOT NULL
) PARTITION BY RANGE (appended_at);
CREATE INDEX ON {{schema}}.journal_batches (topic, first_offset);
CREATE INDEX ON {{schema}}.journal_batches (topic, xid);
CREATE INDEX ON {{schema}}.journal_batches (topic, at, first_offset);
CREATE TABLE {{schema}}.journal_cursors (
	topic    text           NOT NULL,
	grp      text           NOT NULL,
	next     bigint         NOT NULL,
	acked    int8multirange NOT NULL DEFAULT '{}',
	saved_at timestamptz    NOT NULL DEFAULT now(),
	PRIMARY KEY (topic, grp)
);
`}, {Version: 2, SQL: `
CREATE SEQUENCE {{schema}}.journal_lease_tokens;
CREATE TABLE {{schema}}.journal_leases (
	grp        text        PRIMARY KEY,
	owner      text        NOT NULL,
	token      bigint      NOT NULL,
	expires_at timestamptz NOT NULL
);
CREATE TABLE {{schema}}.journal_members (
	id         text        PRIMARY KEY,
	expires_at timestamptz NOT NULL
);
`}}

// Migration 2: journal_leases holds, per consumer group that is delivered
// under a lease (lease.go), who delivers it, until when, and its fencing
// token: a number from journal_lease_tokens, new at every acquisition, so
// that a holder that lost the lease and took it back is not the one it was.

// queries holds the journal's SQL with the schema filled in.
type queries struct {
	schema                                       string // quoted
	insert, ensureTopic, probe, lockTopic, order string
	read, bounds, seek, topics, lockTopics, trim string
	partitions, dropCheck                        string
	cursors, saveCursor, deleteCursor            string
	loadCursor, fencedSave                       string
	acquire, renew, release, holders             string
	heartbeat, members, leave                    string
}

func newQueries(quotedSchema string) queries {
	q := queries{schema: quotedSchema}
	s := func(sql string) string { return strings.ReplaceAll(sql, "{{schema}}", quotedSchema) }

	// The outer SELECT runs in the insert's transaction and returns its id;
	// it also leaves the id in the session, for the ordering sent right
	// behind it in the same round trip (see Storage.insert).
	q.insert = s(`WITH rows AS (
		SELECT r.topic, r.idx, r.at, r.uuid, r.pairs, r.size,
			(sum(r.pairs) OVER w - r.pairs)::int AS pairs_before,
			(sum(r.size) OVER w - r.size)::int AS bytes_before
		FROM unnest($1::text[], $2::int[], $3::timestamptz[], $4::text[], $5::int[], $6::int[])
			WITH ORDINALITY AS r(topic, idx, at, uuid, pairs, size, n)
		WINDOW w AS (ORDER BY r.n)
	), ins AS (
		INSERT INTO {{schema}}.journal_records (topic, idx, appended_at, uuid, metadata, payload)
		SELECT topic, idx, at, uuid,
			CASE WHEN pairs > 0 THEN jsonb_object(($7::text[])[2*pairs_before+1 : 2*(pairs_before+pairs)]) END,
			substring(coalesce($8::bytea, '') FROM bytes_before+1 FOR size)
		FROM rows
	) SELECT pg_current_xact_id()::text::bigint, set_config('sinkbus.appended_xid', pg_current_xact_id()::text, false)`)
	q.ensureTopic = s(`INSERT INTO {{schema}}.journal_topics (topic) VALUES ($1) ON CONFLICT DO NOTHING`)

	// For every topic: its next offset, and whether committed records wait
	// below the horizon of this snapshot (orderable now) or above it
	// (waiting for an older transaction to end).
	q.probe = s(`SELECT t.topic, t.next_offset,
		EXISTS (SELECT 1 FROM {{schema}}.journal_records r
			WHERE r.topic = t.topic AND r.xid >= t.horizon AND r.xid < pg_snapshot_xmin(pg_current_snapshot())),
		EXISTS (SELECT 1 FROM {{schema}}.journal_records r
			WHERE r.topic = t.topic AND r.xid >= greatest(t.horizon, pg_snapshot_xmin(pg_current_snapshot())))
		FROM {{schema}}.journal_topics t`)

	q.lockTopic = s(`SELECT 1 FROM {{schema}}.journal_topics WHERE topic = $1 FOR UPDATE`)
	// Runs with the topic's row locked, so its snapshot (taken after the
	// lock) sees every earlier ordering. Transactions below the snapshot's
	// xmin have all ended: no record can still appear among them, so they
	// are given their places, in transaction id order, for good. The other
	// processes hear of it at the commit ($2 is the channel, $3 the
	// payload). It returns how many records it placed, and where the
	// transactions it placed and the transactions $4 sit ($4 NULL: the one
	// this session inserted last).
	q.order = s(`WITH snap AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin),
	t AS (SELECT * FROM {{schema}}.journal_topics WHERE topic = $1),
	new AS (
		SELECT r.xid, count(*) AS n, max(r.appended_at) AS appended_at
		FROM {{schema}}.journal_records r, t, snap
		WHERE r.topic = $1 AND r.xid >= t.horizon AND r.xid < snap.xmin
		GROUP BY r.xid
	),
	placed AS (
		SELECT new.xid, new.n, new.appended_at,
			t.next_offset + (sum(new.n) OVER w)::bigint - new.n AS first_offset,
			greatest(t.last_at, max(new.appended_at) OVER w) AS at
		FROM new, t WINDOW w AS (ORDER BY new.xid)
	),
	ins AS (
		INSERT INTO {{schema}}.journal_batches (topic, xid, first_offset, count, appended_at, at)
		SELECT $1, xid, first_offset, n, appended_at, at FROM placed
	),
	upd AS (
		UPDATE {{schema}}.journal_topics SET
			next_offset = next_offset + coalesce((SELECT sum(n) FROM new), 0)::bigint,
			horizon = greatest(horizon, (SELECT xmin FROM snap)),
			last_at = coalesce((SELECT max(at) FROM placed), last_at)
		WHERE topic = $1 AND EXISTS (SELECT 1 FROM new)
	),
	notified AS (SELECT pg_notify($2, $3) WHERE EXISTS (SELECT 1 FROM new)),
	asked AS (
		SELECT coalesce($4::text[], ARRAY[current_setting('sinkbus.appended_xid', true)])::xid8[] AS xids
	),
	placed_now AS (
		SELECT xid, first_offset, at FROM placed WHERE xid = ANY ((SELECT xids FROM asked)::xid8[])
	),
	mine AS (
		SELECT xid, first_offset, at FROM placed
		UNION ALL
		-- Placed before (by another process): looked for only when an
		-- asked transaction was not placed now, which is rare.
		SELECT xid, first_offset, at FROM {{schema}}.journal_batches
		WHERE topic = $1 AND xid = ANY ((SELECT xids FROM asked)::xid8[])
			AND (SELECT count(*) FROM placed_now) < cardinality((SELECT xids FROM asked))
	)
	SELECT coalesce((SELECT sum(n) FROM new), 0)::bigint, (SELECT count(*) FROM notified),
		coalesce((SELECT array_agg(xid::text::bigint) FROM mine), '{}'),
		coalesce((SELECT array_agg(first_offset) FROM mine), '{}'),
		coalesce((SELECT array_agg(at) FROM mine), '{}')`)

	// Dense offsets make [from, from+max) the window to read; the batches
	// overlapping it are found by first_offset, their records by
	// (topic, xid, idx) in the one partition their appended_at names.
	q.read = s(`WITH start AS (
		SELECT greatest($2::bigint, (SELECT first_offset FROM {{schema}}.journal_topics WHERE topic = $1)) AS o
	)
	SELECT b.first_offset + r.idx, b.at, r.uuid, r.metadata, r.payload
	FROM (
		SELECT xid, first_offset, appended_at, at FROM {{schema}}.journal_batches
		WHERE topic = $1
			AND first_offset >= coalesce((SELECT max(first_offset) FROM {{schema}}.journal_batches
				WHERE topic = $1 AND first_offset <= (SELECT o FROM start)), 0)
			AND first_offset < (SELECT o FROM start) + $3
		ORDER BY first_offset
		LIMIT $3
	) b
	CROSS JOIN LATERAL (
		SELECT idx, uuid, metadata, payload FROM {{schema}}.journal_records r
		WHERE r.topic = $1 AND r.xid = b.xid AND r.appended_at = b.appended_at
			AND r.idx >= (SELECT o FROM start) - b.first_offset
		ORDER BY idx
		LIMIT $3
	) r
	ORDER BY 1
	LIMIT $3`)
	q.bounds = s(`SELECT first_offset, next_offset FROM {{schema}}.journal_topics WHERE topic = $1`)
	q.seek = s(`SELECT coalesce(
		(SELECT b.first_offset FROM {{schema}}.journal_batches b, {{schema}}.journal_topics t
			WHERE b.topic = $1 AND t.topic = $1 AND b.at >= $2 AND b.first_offset >= t.first_offset
			ORDER BY b.at, b.first_offset LIMIT 1),
		(SELECT next_offset FROM {{schema}}.journal_topics WHERE topic = $1),
		1)`)
	q.topics = s(`SELECT topic FROM {{schema}}.journal_topics ORDER BY topic`)

	q.lockTopics = s(`SELECT 1 FROM {{schema}}.journal_topics ORDER BY topic FOR UPDATE`)
	// Moves every topic's floor to its first batch at or after the cut.
	q.trim = s(`WITH floor AS (
		SELECT t.topic, t.first_offset AS old, coalesce(
			(SELECT b.first_offset FROM {{schema}}.journal_batches b
				WHERE b.topic = t.topic AND b.at >= $1 AND b.first_offset >= t.first_offset
				ORDER BY b.at, b.first_offset LIMIT 1),
			t.next_offset) AS new
		FROM {{schema}}.journal_topics t
	)
	UPDATE {{schema}}.journal_topics t SET first_offset = floor.new
	FROM floor WHERE t.topic = floor.topic AND floor.new > floor.old
	RETURNING floor.new - floor.old`)
	q.partitions = s(`SELECT c.relname FROM pg_inherits i
		JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = '{{schema}}.journal_records'::regclass`)
	// A day may go once no record in it waits to be ordered and its last
	// batch of each topic ends below the topic's floor (batches do not
	// overlap); both by index, as it runs with the tables locked.
	q.dropCheck = s(`SELECT EXISTS (
		SELECT 1 FROM {{schema}}.journal_topics t
		WHERE EXISTS (SELECT 1 FROM {{schema}}.%[1]s r WHERE r.topic = t.topic AND r.xid >= t.horizon)
			OR (SELECT b.first_offset + b.count FROM {{schema}}.%[2]s b
				WHERE b.topic = t.topic ORDER BY b.first_offset DESC LIMIT 1) > t.first_offset)`)

	q.cursors = s(`SELECT topic, grp, next, acked FROM {{schema}}.journal_cursors`)
	q.saveCursor = s(`INSERT INTO {{schema}}.journal_cursors (topic, grp, next, acked) VALUES ($1, $2, $3, $4)
		ON CONFLICT (topic, grp) DO UPDATE SET next = excluded.next, acked = excluded.acked, saved_at = now()`)
	q.deleteCursor = s(`DELETE FROM {{schema}}.journal_cursors WHERE topic = $1 AND grp = $2`)
	q.loadCursor = s(`SELECT next, acked FROM {{schema}}.journal_cursors WHERE topic = $1 AND grp = $2`)
	// A group under a lease ($6) is saved only by its holder ($5, the
	// token), before the lease expires; FOR SHARE makes a takeover (which
	// updates the lease row) wait for the save, so the new holder reads it.
	q.fencedSave = s(`INSERT INTO {{schema}}.journal_cursors (topic, grp, next, acked)
		SELECT $1, $2, $3, $4
		WHERE NOT EXISTS (SELECT 1 FROM {{schema}}.journal_leases WHERE grp = $6)
			OR EXISTS (SELECT 1 FROM {{schema}}.journal_leases
				WHERE grp = $6 AND token = $5 AND expires_at > clock_timestamp() FOR SHARE)
		ON CONFLICT (topic, grp) DO UPDATE SET next = excluded.next, acked = excluded.acked, saved_at = now()`)
	// A lease is taken when it is free or expired; the holder renewing it
	// keeps its token.
	q.acquire = s(`INSERT INTO {{schema}}.journal_leases AS l (grp, owner, token, expires_at)
		VALUES ($1, $2, nextval('{{schema}}.journal_lease_tokens'), clock_timestamp() + $3 * interval '1 microsecond')
		ON CONFLICT (grp) DO UPDATE SET owner = excluded.owner, token = excluded.token, expires_at = excluded.expires_at
		WHERE l.expires_at <= clock_timestamp()
		RETURNING token`)
	q.renew = s(`UPDATE {{schema}}.journal_leases SET expires_at = clock_timestamp() + $3 * interval '1 microsecond'
		WHERE owner = $1 AND grp = ANY($2::text[]) AND expires_at > clock_timestamp()
		RETURNING grp, token`)
	q.release = s(`DELETE FROM {{schema}}.journal_leases WHERE grp = $1 AND token = $2`)
	q.heartbeat = s(`INSERT INTO {{schema}}.journal_members (id, expires_at)
		VALUES ($1, clock_timestamp() + $2 * interval '1 microsecond')
		ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at`)
	q.members = s(`SELECT id FROM {{schema}}.journal_members WHERE expires_at > clock_timestamp() ORDER BY id`)
	q.leave = s(`WITH gone AS (DELETE FROM {{schema}}.journal_members WHERE id = $1)
		DELETE FROM {{schema}}.journal_leases WHERE owner = $1`)
	q.holders = s(`SELECT grp, owner, token, expires_at > clock_timestamp() FROM {{schema}}.journal_leases`)
	return q
}
