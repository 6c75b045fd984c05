package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/internal/clock"
	"github.com/sinkbus/sinkbus/internal/pgmigrate"
	"github.com/sinkbus/sinkbus/internal/pgtest"
	"github.com/sinkbus/sinkbus/replay"
	"github.com/sinkbus/sinkbus/replay/postgres"
	"github.com/sinkbus/sinkbus/replay/storagetest"
)

// The trap of every log on PostgreSQL: ids (sequences, transaction ids) are
// handed out in one order and committed in another. Here a transaction
// takes its id and inserts a record, and stays open while later appends
// commit. A reader that went by "id > the last one read" would read those
// and step over the early record for good once it commits. The journal
// orders nothing past the open transaction until it ends, then places the
// early record first: a consumer that read all along gets every record,
// and in the order of the ids.
func TestStorage_a_transaction_that_commits_late_is_not_skipped(t *testing.T) {
	schema := pgtest.Schema(t)
	st := open(t, postgres.Config{Schema: schema, OrderWait: 50 * time.Millisecond})
	j, err := replay.Open(replay.Config{Storage: st, CompactEvery: -1})
	require.NoError(t, err)
	defer j.Close()
	msgs, err := j.Consumer(replay.ConsumerConfig{Group: "g", FromOldest: true}).Subscribe(context.Background(), "t")
	require.NoError(t, err)

	require.NoError(t, j.Publish("t", message.NewMessage("first", nil)))
	assert.Equal(t, "first", receiveAck(t, msgs))

	// An application's transaction (as the outbox will write) inserts a
	// record and stays open.
	ctx := context.Background()
	late, err := pgtest.Pool(t).Begin(ctx)
	require.NoError(t, err)
	defer late.Rollback(ctx)
	_, err = late.Exec(ctx, `INSERT INTO `+pgx.Identifier{schema}.Sanitize()+`.journal_records
		(topic, idx, appended_at, uuid, payload) VALUES ('t', 0, now(), 'late', '')`)
	require.NoError(t, err)

	// Later transactions commit meanwhile: Publish returns (durable) ...
	for _, id := range []string{"after-1", "after-2"} {
		require.NoError(t, j.Publish("t", message.NewMessage(id, nil)))
	}
	var visible []string
	rows, err := pgtest.Pool(t).Query(ctx, `SELECT uuid FROM `+pgx.Identifier{schema}.Sanitize()+`.journal_records ORDER BY xid, idx`)
	require.NoError(t, err)
	visible, err = pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	assert.Equal(t, []string{"first", "after-1", "after-2"}, visible,
		"committed and visible while the earlier transaction is open: the trap")

	// ... but they get no offsets: nothing is readable past the open
	// transaction, so nothing can be read past the late record.
	_, next := st.Bounds("t")
	assert.Equal(t, uint64(2), next)
	recs, err := st.Read("t", 2, 10)
	require.NoError(t, err)
	assert.Empty(t, recs)
	select {
	case m := <-msgs:
		t.Fatalf("%s delivered while an earlier transaction is open", m.UUID)
	case <-time.After(300 * time.Millisecond):
	}

	require.NoError(t, late.Commit(ctx))
	var got []string
	for range 3 {
		got = append(got, receiveAck(t, msgs))
	}
	assert.Equal(t, []string{"late", "after-1", "after-2"}, got, "the late record comes first: its transaction began first")
	all := storagetest.ReadAll(t, st, "t")
	require.Len(t, all, 4)
	for i, r := range all {
		assert.Equal(t, uint64(i+1), r.Offset, "dense")
		if i > 0 {
			assert.False(t, r.Time.Before(all[i-1].Time), "time never goes back")
		}
	}
}

// Concurrent Appends share inserts: one statement, one commit for all the
// calls waiting while the previous one ran.
func TestStorage_concurrent_appends_share_one_insert_and_commit(t *testing.T) {
	st := open(t, postgres.Config{})
	const writers, perWriter = 32, 40
	storagetest.AppendConcurrently(t, st, "t", writers, perWriter, func(rec *replay.Record) {
		assert.NotZero(t, rec.Offset, "ordered before Append returned")
	})
	require.Len(t, storagetest.ReadAll(t, st, "t"), writers*perWriter)
	inserts := postgres.Inserts(st)
	assert.Less(t, inserts, uint64(writers*perWriter/4), "inserts for %d appends", writers*perWriter)
	t.Logf("%d appends, %d inserts: %.1f records per commit", writers*perWriter, inserts, float64(writers*perWriter)/float64(inserts))
}

// A journal of another process (another replica) appends: this one's
// consumer is woken by the notification, not by the poll (an hour here).
func TestStorage_readers_wake_when_another_process_appends(t *testing.T) {
	_, jHere, jThere := replicas(t)

	msgs, err := jHere.Consumer(replay.ConsumerConfig{Group: "g"}).Subscribe(context.Background(), "t")
	require.NoError(t, err)
	for i := range 3 {
		// The consumer is idle at the head before each one.
		time.Sleep(50 * time.Millisecond)
		id := fmt.Sprintf("from-there-%d", i)
		require.NoError(t, jThere.Publish("t", message.NewMessage(id, nil)))
		assert.Equal(t, id, receiveAck(t, msgs))
	}
}

// Records that no process ordered (their writer died after its commit, or
// was the application's own transaction) are found by the poll, which
// orders them and wakes the readers.
func TestStorage_poll_orders_and_wakes_what_nobody_announced(t *testing.T) {
	schema := pgtest.Schema(t)
	st := open(t, postgres.Config{Schema: schema, PollEvery: 50 * time.Millisecond})
	j, err := replay.Open(replay.Config{Storage: st, CompactEvery: -1})
	require.NoError(t, err)
	defer j.Close()
	require.NoError(t, j.Publish("t", message.NewMessage("announced", nil)))
	msgs, err := j.Consumer(replay.ConsumerConfig{Group: "g", FromOldest: true}).Subscribe(context.Background(), "t")
	require.NoError(t, err)
	assert.Equal(t, "announced", receiveAck(t, msgs))

	_, err = pgtest.Pool(t).Exec(context.Background(), `INSERT INTO `+pgx.Identifier{schema}.Sanitize()+`.journal_records
		(topic, idx, appended_at, uuid, payload) VALUES ('t', 0, now(), 'silent', ''), ('t', 1, now(), 'silent-2', '')`)
	require.NoError(t, err)
	assert.Equal(t, "silent", receiveAck(t, msgs))
	assert.Equal(t, "silent-2", receiveAck(t, msgs))
}

// Retention drops whole days: a day goes once it ended before the cut,
// everything in it older.
func TestStorage_trim_drops_whole_days(t *testing.T) {
	schema := pgtest.Schema(t)
	st := open(t, postgres.Config{Schema: schema})
	clk := clock.NewFake(time.Date(2026, 3, 1, 6, 0, 0, 0, time.UTC))
	j, err := replay.Open(replay.Config{Storage: st, Clock: clk, Retention: 36 * time.Hour, CompactEvery: -1})
	require.NoError(t, err)
	defer j.Close()
	for range 4 { // 1 March 06:00, 12:00; 2 March ... through 4 March 18:00
		for range 2 {
			require.NoError(t, j.Publish("t", message.NewMessage(watermill.NewULID(), nil)))
			clk.Advance(6 * time.Hour)
		}
		clk.Advance(12 * time.Hour)
	}
	assert.Equal(t, []string{"20260301", "20260302", "20260303", "20260304"}, partitions(t, schema))

	// Now 5 March 06:00: the cut is 3 March 18:00.
	n, err := j.Compact()
	require.NoError(t, err)
	assert.Equal(t, 6, n, "1, 2 and 3 March")
	assert.Equal(t, []string{"20260303", "20260304"}, partitions(t, schema),
		"3 March holds only expired records, but its day ends after the cut")
	recs, err := st.Read("t", 1, 10)
	require.NoError(t, err)
	require.Len(t, recs, 2)
	assert.Equal(t, uint64(7), recs[0].Offset)

	clk.Advance(12 * time.Hour) // the cut: 4 March 06:00, the time of record 7
	n, err = j.Compact()
	require.NoError(t, err)
	assert.Zero(t, n)
	assert.Equal(t, []string{"20260304"}, partitions(t, schema))
	recs, err = st.Read("t", 1, 10)
	require.NoError(t, err)
	assert.Len(t, recs, 2, "a dropped day takes no retained record with it")
}

func partitions(t *testing.T, schema string) []string {
	t.Helper()
	rows, err := pgtest.Pool(t).Query(context.Background(), `SELECT substr(c.relname, 17) FROM pg_inherits i
		JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = $1::regclass ORDER BY 1`, pgx.Identifier{schema}.Sanitize()+".journal_records")
	require.NoError(t, err)
	days, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return days
}

// Several processes starting at once on a new schema: one creates the
// tables, the others find them; opening again changes nothing.
func TestOpen_migrates_once_when_processes_start_together(t *testing.T) {
	schema := pgtest.Schema(t)
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := postgres.Open(context.Background(), postgres.Config{Pool: pgtest.Pool(t), Schema: schema})
			if assert.NoError(t, err) {
				assert.NoError(t, s.Close())
			}
		}()
	}
	wg.Wait()
	var version int
	require.NoError(t, pgtest.Pool(t).QueryRow(context.Background(),
		`SELECT version FROM `+pgx.Identifier{schema}.Sanitize()+`.schema_migrations WHERE component = 'journal'`).Scan(&version))
	assert.Equal(t, 2, version)

	st := open(t, postgres.Config{Schema: schema})
	rec := &replay.Record{UUID: "a"}
	require.NoError(t, st.Append("t", []*replay.Record{rec}, time.Now))
	assert.Equal(t, uint64(1), rec.Offset)
}

func TestOpen_refuses_a_schema_migrated_by_a_newer_build(t *testing.T) {
	schema := pgtest.Schema(t)
	require.NoError(t, open(t, postgres.Config{Schema: schema}).Close())
	_, err := pgtest.Pool(t).Exec(context.Background(),
		`UPDATE `+pgx.Identifier{schema}.Sanitize()+`.schema_migrations SET version = 99 WHERE component = 'journal'`)
	require.NoError(t, err)
	_, err = postgres.Open(context.Background(), postgres.Config{Pool: pgtest.Pool(t), Schema: schema})
	require.ErrorIs(t, err, pgmigrate.ErrTooNew)
	assert.ErrorContains(t, err, "version 99")
}

// A schema named by the application is created, whatever its name.
func TestOpen_any_schema_name(t *testing.T) {
	schema := pgtest.Schema(t) + `"Odd name;`
	t.Cleanup(func() {
		_, _ = pgtest.Pool(t).Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
	})
	st := open(t, postgres.Config{Schema: schema})
	rec := &replay.Record{UUID: "a"}
	require.NoError(t, st.Append("t", []*replay.Record{rec}, time.Now))
	recs, err := st.Read("t", 1, 1)
	require.NoError(t, err)
	require.Len(t, recs, 1)
}

func TestConfig_Validate_names_every_problem(t *testing.T) {
	err := postgres.Config{
		Schema: strings.Repeat("s", 56), OrderWait: -1, PollEvery: -1, Timeout: -1, MaxBatch: -1,
	}.Validate()
	require.Error(t, err)
	for _, field := range []string{"url", "schema", "order_wait", "poll_every", "timeout", "max_batch"} {
		assert.Contains(t, err.Error(), field+":")
	}
	err = postgres.Config{URL: "postgres://h:notaport/db"}.Validate()
	assert.ErrorContains(t, err, "url:")
	err = postgres.Config{URL: "postgres://postgres@127.0.0.1/test", Schema: "a\x00b"}.Validate()
	assert.ErrorContains(t, err, "schema: must be UTF-8 without NUL bytes")
	require.NoError(t, postgres.Config{URL: "postgres://postgres@127.0.0.1/test"}.Validate())
	_, err = postgres.Open(context.Background(), postgres.Config{})
	assert.ErrorContains(t, err, "url: is required")
}

// What a database's text cannot hold is refused for that call alone, with
// the field named; the records of other calls in the same batch go in.
func TestStorage_refuses_text_it_cannot_store(t *testing.T) {
	st := open(t, postgres.Config{})
	bad := []*replay.Record{
		{UUID: "ok"},
		{UUID: "nul\x00"},
		{UUID: "x", Metadata: map[string]string{"k": "\xff"}},
	}
	var wg sync.WaitGroup
	wg.Add(2)
	var badErr, goodErr error
	good := &replay.Record{UUID: "good"}
	go func() { defer wg.Done(); badErr = st.Append("t", bad, time.Now) }()
	go func() { defer wg.Done(); goodErr = st.Append("t", []*replay.Record{good}, time.Now) }()
	wg.Wait()
	require.Error(t, badErr)
	assert.ErrorContains(t, badErr, "[1].uuid: must be UTF-8 without NUL bytes")
	assert.ErrorContains(t, badErr, "[2].metadata:")
	require.NoError(t, goodErr)
	require.Error(t, st.Append("nul\x00topic", []*replay.Record{{UUID: "a"}}, time.Now))
	recs, err := st.Read("t", 1, 10)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	assert.Equal(t, "good", recs[0].UUID)
}

func TestStorage_closed(t *testing.T) {
	st := open(t, postgres.Config{})
	require.NoError(t, st.Close())
	require.NoError(t, st.Close(), "idempotent")
	require.ErrorIs(t, st.Append("t", []*replay.Record{{UUID: "a"}}, time.Now), postgres.ErrClosed)
}

// The pool stays the application's: Close leaves it open.
func TestStorage_leaves_the_applications_pool_open(t *testing.T) {
	p := pgtest.Pool(t)
	st := open(t, postgres.Config{Pool: p})
	require.NoError(t, st.Close())
	require.NoError(t, p.Ping(context.Background()))

	// With a URL it opens and closes its own.
	own := open(t, postgres.Config{URL: pgtest.URL(t)})
	rec := &replay.Record{UUID: "a"}
	require.NoError(t, own.Append("t", []*replay.Record{rec}, time.Now))
	require.NoError(t, own.Close())
}

// Append waits for its place at most OrderWait: held back longer (here the
// topic's row is locked by hand; an application's transaction left open
// does the same), it returns without offsets, its records committed; they
// are ordered, and readable, once the hold ends.
func TestStorage_append_returns_after_order_wait_and_is_ordered_later(t *testing.T) {
	schema := pgtest.Schema(t)
	st := open(t, postgres.Config{Schema: schema, OrderWait: 100 * time.Millisecond})
	first := &replay.Record{UUID: "first"}
	require.NoError(t, st.Append("t", []*replay.Record{first}, time.Now))
	require.Equal(t, uint64(1), first.Offset)

	ctx := context.Background()
	hold, err := pgtest.Pool(t).Begin(ctx)
	require.NoError(t, err)
	defer hold.Rollback(ctx)
	_, err = hold.Exec(ctx, `SELECT 1 FROM `+pgx.Identifier{schema}.Sanitize()+`.journal_topics WHERE topic = 't' FOR UPDATE`)
	require.NoError(t, err)

	held := &replay.Record{UUID: "held"}
	require.NoError(t, st.Append("t", []*replay.Record{held}, time.Now), "committed: no error")
	assert.Zero(t, held.Offset, "no place yet")
	_, next := st.Bounds("t")
	assert.Equal(t, uint64(2), next)

	require.NoError(t, hold.Rollback(ctx))
	require.Eventually(t, func() bool {
		_, next := st.Bounds("t")
		return next == 3
	}, 10*time.Second, 10*time.Millisecond)
	recs, err := st.Read("t", 2, 10)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	assert.Equal(t, "held", recs[0].UUID)
}

// The LISTEN connection dropped: while it is away notifications are lost;
// once it is back (a second later) every topic's readers look again, so
// what was appended meanwhile is delivered without waiting for the poll.
func TestStorage_listener_reconnects_and_catches_up(t *testing.T) {
	schema, jHere, jThere := replicas(t)
	msgs, err := jHere.Consumer(replay.ConsumerConfig{Group: "g"}).Subscribe(context.Background(), "t")
	require.NoError(t, err)
	require.NoError(t, jThere.Publish("t", message.NewMessage("before", nil)))
	assert.Equal(t, "before", receiveAck(t, msgs))

	// Both listeners go (the test cannot tell them apart); "there" does
	// not need its own.
	var killed int
	require.NoError(t, pgtest.Pool(t).QueryRow(context.Background(), `SELECT count(pg_terminate_backend(pid, 10000))
		FROM pg_stat_activity WHERE application_name = 'sinkbus journal listener' AND query LIKE '%`+schema+`%'`).Scan(&killed))
	require.Equal(t, 2, killed)
	require.NoError(t, jThere.Publish("t", message.NewMessage("while-away", nil)))
	assert.Equal(t, "while-away", receiveAck(t, msgs))
}

// A day that ended before the cut stays while it holds a record that is
// retained: one whose transaction committed late, after newer ones, and so
// took their time.
func TestStorage_trim_keeps_a_day_that_holds_a_retained_record(t *testing.T) {
	schema := pgtest.Schema(t)
	st := open(t, postgres.Config{Schema: schema})
	at := func(day, hour int) func() time.Time {
		return func() time.Time { return time.Date(2026, 3, day, hour, 0, 0, 0, time.UTC) }
	}
	require.NoError(t, st.Append("t", []*replay.Record{{UUID: "a"}}, at(1, 6)))
	require.NoError(t, st.Append("t", []*replay.Record{{UUID: "b"}}, at(3, 6)))
	_, err := pgtest.Pool(t).Exec(context.Background(), `INSERT INTO `+pgx.Identifier{schema}.Sanitize()+`.journal_records
		(topic, idx, appended_at, uuid, payload) VALUES ('t', 0, '2026-03-01 12:00:00+00', 'late', '')`)
	require.NoError(t, err)
	require.NoError(t, st.Append("t", []*replay.Record{{UUID: "c"}}, at(3, 7))) // orders "late" first
	all := storagetest.ReadAll(t, st, "t")
	require.Len(t, all, 4)
	assert.Equal(t, "late", all[2].UUID)
	assert.True(t, all[2].Time.Equal(all[1].Time), "late took b's time")

	n, err := st.Trim(time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC))
	require.NoError(t, err)
	assert.Equal(t, 1, n, "a alone")
	assert.Equal(t, []string{"20260301", "20260303"}, partitions(t, schema), "1 March holds late, which is retained")
	recs, err := st.Read("t", 1, 10)
	require.NoError(t, err)
	require.Len(t, recs, 3)
	assert.Equal(t, "late", recs[1].UUID)

	n, err = st.Trim(time.Date(2026, 3, 3, 6, 30, 0, 0, time.UTC))
	require.NoError(t, err)
	assert.Equal(t, 2, n, "b and late")
	assert.Equal(t, []string{"20260303"}, partitions(t, schema))
}

// replicas opens two journals on one new schema, as two processes would,
// polling only once an hour: what wakes their readers is the notification.
func replicas(t *testing.T) (schema string, here, there *replay.Journal) {
	t.Helper()
	schema = pgtest.Schema(t)
	for _, j := range []**replay.Journal{&here, &there} {
		var err error
		*j, err = replay.Open(replay.Config{Storage: open(t, postgres.Config{Schema: schema, PollEvery: time.Hour}), CompactEvery: -1})
		require.NoError(t, err)
		t.Cleanup(func() { _ = (*j).Close() })
	}
	return schema, here, there
}

// receiveAck acknowledges the next message and returns its UUID.
func receiveAck(t *testing.T, msgs <-chan *message.Message) string {
	t.Helper()
	m := storagetest.Receive(t, msgs)
	m.Ack()
	return m.UUID
}
