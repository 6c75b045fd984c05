package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/sinkbus/sinkbus/field"
	"github.com/sinkbus/sinkbus/replay"
)

// Cursors are rows of journal_cursors: the watermark in next, the
// acknowledged ranges above it as an int8multirange ({[8,10),[12,13)}),
// which is exactly replay.Cursor's Acked.

func (s *Storage) loadCursors(ctx context.Context) (map[replay.CursorKey]replay.Cursor, error) {
	out := make(map[replay.CursorKey]replay.Cursor)
	rows, err := s.pool.Query(ctx, s.q.cursors)
	if err != nil {
		return nil, fmt.Errorf("sinkbus: postgres journal cursors: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k replay.CursorKey
		var next int64
		var acked pgtype.Multirange[pgtype.Range[pgtype.Int8]]
		if err := rows.Scan(&k.Topic, &k.Group, &next, &acked); err != nil {
			return nil, fmt.Errorf("sinkbus: postgres journal cursors: %w", err)
		}
		c := cursorFromRow(next, acked)
		out[k] = c
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sinkbus: postgres journal cursors: %w", err)
	}
	return out, nil
}

// cursorFromRow turns a row into a cursor that cannot make a consumer skip,
// however the row was damaged: a negative watermark becomes 0 (everything
// is delivered again), and acknowledged ranges that are not what
// SaveCursors writes are dropped: the watermark alone is exact as far as
// it goes, what is above it is delivered again.
func cursorFromRow(next int64, acked pgtype.Multirange[pgtype.Range[pgtype.Int8]]) replay.Cursor {
	c := replay.Cursor{Next: uint64(max(next, 0))}
	for _, r := range acked {
		if !r.Valid || !r.Lower.Valid || !r.Upper.Valid || r.LowerType != pgtype.Inclusive ||
			r.UpperType != pgtype.Exclusive || r.Lower.Int64 < 0 {
			return replay.Cursor{Next: c.Next}
		}
		c.Acked = append(c.Acked, replay.Range{From: uint64(r.Lower.Int64), To: uint64(r.Upper.Int64)})
	}
	if c.Validate() != nil {
		c.Acked = nil
	}
	return c
}

// Cursors implements replay.Storage: every cursor in the schema, as it is
// now.
func (s *Storage) Cursors() (map[replay.CursorKey]replay.Cursor, error) {
	var out map[replay.CursorKey]replay.Cursor
	err := s.call(func(ctx context.Context) (err error) {
		out, err = s.loadCursors(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.savedMu.Lock()
	s.saved = cloneCursors(out)
	s.savedMu.Unlock()
	return out, nil
}

// SaveCursors implements replay.Storage: the cursors that differ from what
// this storage last read or wrote are written in one transaction. A journal
// saves all its cursors every flush; writing only the changed ones keeps an
// idle bus from rewriting rows, and leaves alone the cursors of groups this
// process does not move.
func (s *Storage) SaveCursors(cursors map[replay.CursorKey]replay.Cursor) error {
	s.savedMu.Lock()
	defer s.savedMu.Unlock()
	fence := s.fence.Load()
	var fenced []replay.CursorKey
	b := &pgx.Batch{}
	for k, c := range cursors {
		if !textSafe(k.Topic) || !textSafe(k.Group) {
			return fmt.Errorf("sinkbus: postgres journal save cursors: %w",
				field.New("cursor", "topic and group must be UTF-8 without NUL bytes"))
		}
		if old, ok := s.saved[k]; ok && sameCursor(old, c) {
			continue
		}
		acked := make(pgtype.Multirange[pgtype.Range[pgtype.Int8]], len(c.Acked))
		for i, r := range c.Acked {
			acked[i] = pgtype.Range[pgtype.Int8]{
				Lower: pgtype.Int8{Int64: int64(r.From), Valid: true}, LowerType: pgtype.Inclusive,
				Upper: pgtype.Int8{Int64: int64(r.To), Valid: true}, UpperType: pgtype.Exclusive,
				Valid: true,
			}
		}
		if fence == nil {
			b.Queue(s.q.saveCursor, k.Topic, k.Group, int64(c.Next), acked)
			continue
		}
		lease, token := (*fence)(k.Group)
		b.Queue(s.q.fencedSave, k.Topic, k.Group, int64(c.Next), acked, token, lease).Exec(func(ct pgconn.CommandTag) error {
			if ct.RowsAffected() == 0 {
				fenced = append(fenced, k)
			}
			return nil
		})
	}
	if b.Len() == 0 {
		return nil
	}
	err := s.call(func(ctx context.Context) error {
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			return tx.SendBatch(ctx, b).Close()
		})
	})
	if err != nil {
		return fmt.Errorf("sinkbus: postgres journal save cursors: %w", err)
	}
	for k, c := range cursors {
		// A fenced cursor counts as saved too: it is not tried again
		// until it changes, or LoadCursor reads what the holder saved.
		s.saved[k] = c.Clone()
	}
	if len(fenced) > 0 {
		return fmt.Errorf("%w: %v", replay.ErrFenced, fenced)
	}
	return nil
}

// LoadCursor implements replay.CursorLoader: group's cursor as saved now,
// by whichever process.
func (s *Storage) LoadCursor(key replay.CursorKey) (c replay.Cursor, ok bool, err error) {
	err = s.call(func(ctx context.Context) error {
		var next int64
		var acked pgtype.Multirange[pgtype.Range[pgtype.Int8]]
		err := s.pool.QueryRow(ctx, s.q.loadCursor, key.Topic, key.Group).Scan(&next, &acked)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		c, ok = cursorFromRow(next, acked), true
		return nil
	})
	if err != nil {
		return replay.Cursor{}, false, fmt.Errorf("sinkbus: postgres journal load cursor: %w", err)
	}
	s.savedMu.Lock()
	if ok {
		s.saved[key] = c.Clone()
	} else {
		delete(s.saved, key)
	}
	s.savedMu.Unlock()
	return c, ok, nil
}

// DeleteCursor implements replay.Storage.
func (s *Storage) DeleteCursor(key replay.CursorKey) error {
	s.savedMu.Lock()
	defer s.savedMu.Unlock()
	err := s.call(func(ctx context.Context) error {
		_, err := s.pool.Exec(ctx, s.q.deleteCursor, key.Topic, key.Group)
		return err
	})
	if err != nil {
		return fmt.Errorf("sinkbus: postgres journal delete cursor: %w", err)
	}
	delete(s.saved, key)
	return nil
}

func sameCursor(a, b replay.Cursor) bool {
	if a.Next != b.Next || len(a.Acked) != len(b.Acked) {
		return false
	}
	for i := range a.Acked {
		if a.Acked[i] != b.Acked[i] {
			return false
		}
	}
	return true
}

func cloneCursors(m map[replay.CursorKey]replay.Cursor) map[replay.CursorKey]replay.Cursor {
	out := make(map[replay.CursorKey]replay.Cursor, len(m))
	for k, v := range m {
		out[k] = v.Clone()
	}
	return out
}
