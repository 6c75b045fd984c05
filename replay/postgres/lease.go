package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Leases let the processes that share a schema split its consumer groups:
// a group is read by the one process holding its lease, until the lease
// expires unless renewed. They are rows (journal_leases), not advisory
// locks: a session lock lives as long as one connection, which PgBouncer's
// transaction pooling does not keep, and a connection that hangs holds it
// for as long as the server takes to notice. A row expires at a time the
// server's clock states, whatever became of its holder's connections.
//
// Each acquisition gets a new fencing token. Writes on behalf of a group
// (its cursor here; the bus's log and rejected events) are accepted only
// with the current token before the lease expires, in the statement that
// writes, so a holder that was paused past its lease writes nothing once
// another took over, or could have.

// ErrLeaseHeld is returned by AcquireLease when another process holds the
// group's lease.
var ErrLeaseHeld = errors.New("sinkbus: postgres journal: lease held by another process")

// AcquireLease takes group's lease for owner for ttl when it is free or has
// expired, and returns its new fencing token.
func (s *Storage) AcquireLease(ctx context.Context, group, owner string, ttl time.Duration) (token int64, err error) {
	err = s.pool.QueryRow(ctx, s.q.acquire, group, owner, ttl.Microseconds()).Scan(&token)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, ErrLeaseHeld
	}
	if err != nil {
		return 0, fmt.Errorf("sinkbus: postgres journal lease %q: %w", group, err)
	}
	return token, nil
}

// RenewLeases extends by ttl owner's leases of groups that have not
// expired, and returns those it extended, with their tokens: a group
// missing from it is lost.
func (s *Storage) RenewLeases(ctx context.Context, owner string, groups []string, ttl time.Duration) (map[string]int64, error) {
	held := make(map[string]int64, len(groups))
	if len(groups) == 0 {
		return held, nil
	}
	rows, err := s.pool.Query(ctx, s.q.renew, owner, groups, ttl.Microseconds())
	if err != nil {
		return nil, fmt.Errorf("sinkbus: postgres journal leases: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var g string
		var token int64
		if err := rows.Scan(&g, &token); err != nil {
			return nil, err
		}
		held[g] = token
	}
	return held, rows.Err()
}

// ReleaseLease gives group's lease up, if token is still its token.
func (s *Storage) ReleaseLease(ctx context.Context, group string, token int64) error {
	if _, err := s.pool.Exec(ctx, s.q.release, group, token); err != nil {
		return fmt.Errorf("sinkbus: postgres journal lease %q: %w", group, err)
	}
	return nil
}

// LeaseHolder is who holds a group's lease.
type LeaseHolder struct {
	Owner string
	Token int64
	Live  bool // not expired
}

// LeaseHolders returns every group's lease.
func (s *Storage) LeaseHolders(ctx context.Context) (map[string]LeaseHolder, error) {
	rows, err := s.pool.Query(ctx, s.q.holders)
	if err != nil {
		return nil, fmt.Errorf("sinkbus: postgres journal leases: %w", err)
	}
	defer rows.Close()
	out := make(map[string]LeaseHolder)
	for rows.Next() {
		var g string
		var h LeaseHolder
		if err := rows.Scan(&g, &h.Owner, &h.Token, &h.Live); err != nil {
			return nil, err
		}
		out[g] = h
	}
	return out, rows.Err()
}

// Heartbeat says owner is alive for ttl and returns every member alive,
// owner included, in name order.
func (s *Storage) Heartbeat(ctx context.Context, owner string, ttl time.Duration) ([]string, error) {
	if _, err := s.pool.Exec(ctx, s.q.heartbeat, owner, ttl.Microseconds()); err != nil {
		return nil, fmt.Errorf("sinkbus: postgres journal heartbeat: %w", err)
	}
	rows, err := s.pool.Query(ctx, s.q.members)
	if err != nil {
		return nil, fmt.Errorf("sinkbus: postgres journal members: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// Leave removes owner from the members and gives up its leases: the others
// take its groups at once instead of when they expire.
func (s *Storage) Leave(ctx context.Context, owner string) error {
	if _, err := s.pool.Exec(ctx, s.q.leave, owner); err != nil {
		return fmt.Errorf("sinkbus: postgres journal leave: %w", err)
	}
	return nil
}

// Fence says under which lease a group's cursor is saved (most often the
// group's own, but a group that works for another, such as a replay for
// its integration, is fenced by that one's) and this process's token of
// it: 0 when it holds none.
type Fence func(group string) (lease string, token int64)

// SetFence makes cursor saves of this storage fenced: a group whose lease
// another holds, or that expired, is not saved (SaveCursors returns
// replay.ErrFenced). A group whose lease has no row is saved as before.
func (s *Storage) SetFence(fence Fence) {
	s.fence.Store(&fence)
}
