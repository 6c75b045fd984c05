package postgres

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sinkbus/sinkbus/internal/pgmigrate"
)

// Partitions are named by their UTC day: journal_records_20260301 and
// journal_batches_20260301 hold the records appended that day, and where
// they sit.
const (
	recordsPrefix = "journal_records_"
	batchesPrefix = "journal_batches_"
	dayLayout     = "20060102"
)

// ddlLockTimeout bounds how long partition DDL waits for its lock on the
// parent table: while it waits, appends and reads queue behind it. A drop
// that cannot have it in time is tried at the next compaction.
const ddlLockTimeout = "500ms"

func dayName(t time.Time) string { return t.UTC().Format(dayLayout) }

// dayOf returns the day a records partition's name holds, and false for a
// table that is not one of ours (anything else attached by hand is left
// alone).
func dayOf(relname string) (time.Time, bool) {
	day, ok := strings.CutPrefix(relname, recordsPrefix)
	if !ok {
		return time.Time{}, false
	}
	start, err := time.Parse(dayLayout, day)
	if err != nil || dayName(start) != day {
		return time.Time{}, false
	}
	return start, true
}

// ensureDay makes sure the partitions of t's day exist. Each is made as a
// table of its own, then attached: ATTACH takes a lock on the parent that
// appends and reads do not wait for (CREATE TABLE ... PARTITION OF would
// stop them all, and deadlock with a reader holding the other parent).
func (s *Storage) ensureDay(ctx context.Context, t time.Time) error {
	day := dayName(t)
	s.daysMu.Lock()
	known := s.days[day]
	s.daysMu.Unlock()
	if known {
		return nil
	}
	from := t.UTC().Truncate(24 * time.Hour)
	bounds := fmt.Sprintf("FOR VALUES FROM ('%s') TO ('%s')",
		from.Format(time.RFC3339), from.Add(24*time.Hour).Format(time.RFC3339))
	for _, parent := range []string{"journal_records", "journal_batches"} {
		part := pgx.Identifier{parent + "_" + day}.Sanitize()
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			// Two processes making one partition at once would collide in
			// the catalog; the lock makes it one after the other.
			if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", pgmigrate.LockKey("partition", s.cfg.Schema)); err != nil {
				return err
			}
			var attached bool
			err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_inherits
				WHERE inhparent = $1::regclass AND inhrelid = to_regclass($2))`,
				s.q.schema+"."+parent, s.q.schema+"."+part).Scan(&attached)
			if err != nil || attached {
				return err
			}
			if _, err := tx.Exec(ctx, fmt.Sprintf("CREATE TABLE IF NOT EXISTS %[1]s.%[2]s (LIKE %[1]s.%[3]s INCLUDING DEFAULTS)",
				s.q.schema, part, parent)); err != nil {
				return err
			}
			_, err = tx.Exec(ctx, fmt.Sprintf("ALTER TABLE %[1]s.%[2]s ATTACH PARTITION %[1]s.%[3]s %[4]s",
				s.q.schema, parent, part, bounds))
			return err
		})
		if err != nil {
			return fmt.Errorf("partition %s: %w", part, err)
		}
	}
	s.daysMu.Lock()
	s.days[day] = true
	s.daysMu.Unlock()
	return nil
}

// forgetDays makes ensureDay look again: a partition it knew was dropped.
func (s *Storage) forgetDays() {
	s.daysMu.Lock()
	clear(s.days)
	s.daysMu.Unlock()
}

// Trim implements replay.Storage. It moves each topic's floor to its first
// record at or after before, at once and for every process; then it drops
// the days whose records all lie below the floors (and are all ordered).
// Disk space comes back a day at a time; what a day holds that is still
// retained keeps it.
func (s *Storage) Trim(before time.Time) (int, error) {
	removed := 0
	err := s.call(func(ctx context.Context) error {
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			// Lock first, then read with a fresh snapshot: an ordering that
			// committed meanwhile is seen whole.
			if _, err := tx.Exec(ctx, s.q.lockTopics); err != nil {
				return err
			}
			rows, err := tx.Query(ctx, s.q.trim, ceilMicro(before))
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var n int64
				if err := rows.Scan(&n); err != nil {
					return err
				}
				removed += int(n)
			}
			return rows.Err()
		})
	})
	if err != nil {
		return 0, fmt.Errorf("sinkbus: postgres journal trim: %w", err)
	}
	s.boundMu.Lock()
	clear(s.bounds)
	s.boundMu.Unlock()
	if err := s.dropDays(before); err != nil {
		s.log.Error("Cannot drop expired journal partitions; trying again at the next compaction", err, nil)
	}
	return removed, nil
}

// dropDays drops the partitions of the days that ended at or before cut and
// hold nothing still retained.
func (s *Storage) dropDays(cut time.Time) error {
	var days []string
	err := s.call(func(ctx context.Context) error {
		rows, err := s.pool.Query(ctx, s.q.partitions)
		if err != nil {
			return err
		}
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		for _, n := range names {
			if start, ok := dayOf(n); ok && !start.Add(24*time.Hour).After(cut) {
				days = append(days, dayName(start))
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(days)
	var errs []error
	for _, day := range days {
		if err := s.call(func(ctx context.Context) error { return s.dropDay(ctx, day) }); err != nil {
			errs = append(errs, fmt.Errorf("day %s: %w", day, err))
		}
	}
	return errors.Join(errs...)
}

// errKept says a day still holds retained or unordered records.
var errKept = errors.New("kept")

// dropDay drops a day's records, then its batches, each in a transaction
// that locks only its own parent (dropping a partition locks its parent):
// holding one parent while waiting for the other would deadlock with a
// reader that holds them the other way round.
func (s *Storage) dropDay(ctx context.Context, day string) error {
	records := pgx.Identifier{recordsPrefix + day}.Sanitize()
	batches := pgx.Identifier{batchesPrefix + day}.Sanitize()
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '"+ddlLockTimeout+"'"); err != nil {
			return err
		}
		// Locked first, so no insert into the day is under way while it
		// is checked.
		if _, err := tx.Exec(ctx, "LOCK TABLE "+s.q.schema+".journal_records IN ACCESS EXCLUSIVE MODE"); err != nil {
			return err
		}
		var keep bool
		if err := tx.QueryRow(ctx, fmt.Sprintf(s.q.dropCheck, records, batches)).Scan(&keep); err != nil {
			return err
		}
		if keep {
			return errKept
		}
		_, err := tx.Exec(ctx, "DROP TABLE "+s.q.schema+"."+records)
		return err
	})
	if err == nil {
		// With its records gone, nothing can add a batch to the day.
		err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '"+ddlLockTimeout+"'"); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "DROP TABLE IF EXISTS "+s.q.schema+"."+batches)
			return err
		})
	}
	switch {
	case errors.Is(err, errKept):
		return nil
	case err == nil:
		s.forgetDays()
		s.log.Info("Dropped an expired journal partition", map[string]any{"day": day})
		return nil
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "55P03" { // lock_not_available
		return fmt.Errorf("busy, not dropped: %w", err)
	}
	return err
}

// ceilMicro rounds t up to PostgreSQL's microseconds: "at or after t" then
// means the same on both sides.
func ceilMicro(t time.Time) time.Time {
	if u := t.Truncate(time.Microsecond); u.Before(t) {
		return u.Add(time.Microsecond)
	}
	return t
}
