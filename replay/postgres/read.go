package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sinkbus/sinkbus/replay"
)

// Read implements replay.Storage: the ordered records of topic from offset
// from on. Records not ordered yet are not there; trimmed ones are skipped.
func (s *Storage) Read(topic string, from uint64, max int) ([]replay.Record, error) {
	if max <= 0 {
		return nil, nil
	}
	var out []replay.Record
	err := s.call(func(ctx context.Context) error {
		rows, err := s.pool.Query(ctx, s.q.read, topic, int64(from), max)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var r replay.Record
			var off int64
			var md map[string]string
			if err := rows.Scan(&off, &r.Time, &r.UUID, &md, &r.Payload); err != nil {
				return err
			}
			if md == nil {
				md = make(map[string]string)
			}
			r.Offset, r.Time, r.Metadata = uint64(off), r.Time.UTC(), md
			out = append(out, r)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("sinkbus: postgres journal read: %w", err)
	}
	return out, nil
}

// Bounds implements replay.Storage. The interface has no error: when the
// database cannot answer, it returns the last bounds it read (and logs).
func (s *Storage) Bounds(topic string) (first, next uint64) {
	var f, n int64
	err := s.call(func(ctx context.Context) error {
		return s.pool.QueryRow(ctx, s.q.bounds, topic).Scan(&f, &n)
	})
	s.boundMu.Lock()
	defer s.boundMu.Unlock()
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return 1, 1
	case err != nil:
		s.log.Error("Cannot read journal bounds; using the last known", err, map[string]any{"topic": topic})
		if b, ok := s.bounds[topic]; ok {
			return b[0], b[1]
		}
		return 1, 1
	}
	s.bounds[topic] = [2]uint64{uint64(f), uint64(n)}
	return uint64(f), uint64(n)
}

// Seek implements replay.Storage.
func (s *Storage) Seek(topic string, t time.Time) (uint64, error) {
	var off int64
	err := s.call(func(ctx context.Context) error {
		return s.pool.QueryRow(ctx, s.q.seek, topic, ceilMicro(t)).Scan(&off)
	})
	if err != nil {
		return 0, fmt.Errorf("sinkbus: postgres journal seek: %w", err)
	}
	return uint64(off), nil
}

// Topics implements replay.Storage. When the database cannot answer it
// returns none (and logs).
func (s *Storage) Topics() []string {
	var out []string
	err := s.call(func(ctx context.Context) error {
		rows, err := s.pool.Query(ctx, s.q.topics)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		s.log.Error("Cannot list journal topics", err, nil)
		return nil
	}
	return out
}
