package pgstate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sinkbus/sinkbus/middleware"
)

// A replay on PostgreSQL is a row of replays: the integration's, not a
// replica's. The replica delivering the integration runs it under the
// integration's lease, and one that takes the integration over resumes it
// from its cursor, the journal's cursor of group ReplayGroup(ref, id). It
// ends completed or aborted; ended rows are kept a day, for those waiting
// on it.

// Replay states.
const (
	ReplayRunning   = "running"
	ReplayCompleted = "completed"
	ReplayAborted   = "aborted"
)

// groupSQL is ReplayGroup in SQL, over columns ref and id.
const groupSQL = `ref || '` + replayGroupSep + `' || id`

// replayGroupSep joins a ref and a replay's id in the replay's group: a
// ref holds no "~".
const replayGroupSep = "~replay-"

// ReplayGroup is the journal group whose cursor is replay id's progress.
func ReplayGroup(ref string, id int64) string { return fmt.Sprintf("%s%s%d", ref, replayGroupSep, id) }

// LeaseOf is the lease a journal group's cursor is saved under: the
// integration's, for its own group (its ref) and for its replays'.
func LeaseOf(group string) string {
	ref, _, _ := strings.Cut(group, replayGroupSep)
	return ref
}

// Replay is a replay still running: its integration's ref and the job as
// the bus described it.
type Replay struct {
	ID  int64
	Ref string
	Job json.RawMessage
}

// ErrNoReplay is returned by AwaitReplay when the replay's row is gone:
// its integration was deleted.
var ErrNoReplay = errors.New("sinkbus: the replay is gone with its integration")

// BeginReplay writes a running replay of ref and returns its id. Replays
// that ended a day ago are removed.
func (s *Store) BeginReplay(ctx context.Context, ref string, job any) (int64, error) {
	doc, err := json.Marshal(job)
	if err != nil {
		return 0, err
	}
	if _, err := s.pool.Exec(ctx, "DELETE FROM "+s.schema+".replays WHERE ended_at < now() - interval '1 day'"); err != nil {
		return 0, fmt.Errorf("sinkbus: postgres replays: %w", err)
	}
	var id int64
	err = s.pool.QueryRow(ctx, "INSERT INTO "+s.schema+".replays (ref, job) VALUES ($1, $2) RETURNING id", ref, doc).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("sinkbus: postgres replays: %w", err)
	}
	return id, nil
}

// RunningReplays returns the replays of the integrations refs that have
// not ended, oldest first.
func (s *Store) RunningReplays(ctx context.Context, refs []string) ([]Replay, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	// A failed Query's error comes back from CollectRows.
	rows, _ := s.pool.Query(ctx, "SELECT id, ref, job FROM "+s.schema+".replays WHERE ref = ANY($1) AND state = 'running' ORDER BY id", refs)
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Replay])
	if err != nil {
		return nil, fmt.Errorf("sinkbus: postgres replays: %w", err)
	}
	return out, nil
}

// EndReplay ends replay id of ref with state (ReplayCompleted or
// ReplayAborted) and outcome, and removes its cursor, under the lease of
// ref whose token the writer holds (-1: not fenced). It reports false when
// the replay had ended already, or the lease is another's: then it goes on
// with the integration. A non-nil entry goes to ref's log in the same
// statement, when the replay ends: whoever sees it ended (AwaitReplay)
// finds the entry saying so.
func (s *Store) EndReplay(ctx context.Context, ref string, token, id int64, state string, outcome any, entry *middleware.LogEntry) (bool, error) {
	doc, err := json.Marshal(outcome)
	if err != nil {
		return false, err
	}
	var logDoc []byte // NULL: no entry
	if entry != nil {
		if logDoc, err = json.Marshal(entry); err != nil {
			return false, err
		}
	}
	var n int
	if err := s.pool.QueryRow(ctx, s.q.endReplay, ref, token, state, doc, id, logDoc, s.logSize).Scan(&n); err != nil {
		return false, fmt.Errorf("sinkbus: postgres replays: %w", err)
	}
	return n == 1, nil
}

// AwaitReplay polls replay id every every until it ended, or ctx ends, and
// returns its state and outcome. It returns ErrNoReplay when the row is
// gone.
func (s *Store) AwaitReplay(ctx context.Context, id int64, every time.Duration) (state string, outcome json.RawMessage, err error) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		err := s.pool.QueryRow(ctx, "SELECT state, outcome FROM "+s.schema+".replays WHERE id = $1", id).Scan(&state, &outcome)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return "", nil, ErrNoReplay
		case err != nil:
			return "", nil, err
		case state != ReplayRunning:
			return state, outcome, nil
		}
		select {
		case <-ctx.Done():
			return "", nil, ctx.Err()
		case <-t.C:
		}
	}
}
