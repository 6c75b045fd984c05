package postgres

import (
	"context"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgxlisten"
)

// listen wakes this process's readers when another process ordered records:
// every ordering that places some notifies "<schema>_journal" with the
// orderer's id and the topic, delivered at its commit. The connection is
// its own, not the pool's: LISTEN needs a session that stays (PgBouncer's
// transaction pooling does not keep one; the poll then does the waking).
// After every (re)connection it wakes every topic, for what it may have
// missed while away.
func (s *Storage) listen() {
	defer s.wg.Done()
	l := &pgxlisten.Listener{
		Connect: func(ctx context.Context) (*pgx.Conn, error) {
			cfg := s.pool.Config().ConnConfig.Copy()
			cfg.RuntimeParams["application_name"] = listenerName
			return pgx.ConnectConfig(ctx, cfg)
		},
		LogError: func(_ context.Context, err error) {
			if s.ctx.Err() == nil {
				s.log.Error("Journal notifications interrupted; polling meanwhile", err, nil)
			}
		},
		ReconnectDelay: time.Second,
	}
	l.Handle(s.channel, listenHandler{s})
	_ = l.Listen(s.ctx) // returns when Close cancels the context
}

// listenerName is the application_name of the LISTEN connection, which
// pg_stat_activity shows.
const listenerName = "sinkbus journal listener"

type listenHandler struct{ s *Storage }

func (h listenHandler) HandleNotification(_ context.Context, n *pgconn.Notification, _ *pgx.Conn) error {
	id, topic, one := strings.Cut(n.Payload, "\n")
	switch {
	case id == h.s.id: // this process woke its readers itself
	case id == orderRequest && one: // an application's transaction committed records
		h.s.requestOrder(topic)
	case one:
		h.s.wakeReaders(topic)
	default:
		h.wakeAll()
	}
	return nil
}

func (h listenHandler) HandleBacklog(context.Context, string, *pgx.Conn) error {
	h.wakeAll()
	return nil
}

func (h listenHandler) wakeAll() {
	for _, t := range h.s.Topics() {
		h.s.wakeReaders(t)
	}
}
