package postgres

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// Whatever a cursor row holds, the cursor made of it is valid and its
// watermark is the row's (or 0): it can make a consumer deliver again,
// never skip.
func FuzzCursorFromRow(f *testing.F) {
	f.Add(int64(5), int64(8), int64(10), int64(12), int64(13), true)
	f.Add(int64(-3), int64(1), int64(2), int64(2), int64(1), false)
	f.Add(int64(0), int64(-7), int64(9), int64(0), int64(0), true)
	f.Fuzz(func(t *testing.T, next, l1, u1, l2, u2 int64, exclusive bool) {
		upper := pgtype.Exclusive
		if !exclusive {
			upper = pgtype.Inclusive
		}
		mr := pgtype.Multirange[pgtype.Range[pgtype.Int8]]{
			{Lower: pgtype.Int8{Int64: l1, Valid: true}, Upper: pgtype.Int8{Int64: u1, Valid: true}, LowerType: pgtype.Inclusive, UpperType: upper, Valid: true},
			{Lower: pgtype.Int8{Int64: l2, Valid: true}, Upper: pgtype.Int8{Int64: u2, Valid: true}, LowerType: pgtype.Inclusive, UpperType: pgtype.Exclusive, Valid: true},
		}
		c := cursorFromRow(next, mr)
		if err := c.Validate(); err != nil {
			t.Fatalf("invalid cursor from row: %v", err)
		}
		if c.Next != uint64(max(next, 0)) {
			t.Fatalf("watermark %d from row %d", c.Next, next)
		}
	})
}

// Only names dayName makes are taken for days: a table attached by hand is
// never dropped as one.
func FuzzDayOf(f *testing.F) {
	for _, s := range []string{"journal_records_20260301", "journal_records_2026031", "journal_records_20261301",
		"journal_batches_20260301", "journal_records_20260301x", "journal_records_+0260301"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		day, ok := dayOf(name)
		if !ok {
			return
		}
		if recordsPrefix+dayName(day) != name {
			t.Fatalf("%q taken for day %v", name, day)
		}
		if day.Truncate(24*time.Hour) != day {
			t.Fatalf("%q: %v is not the start of a day", name, day)
		}
	})
}
