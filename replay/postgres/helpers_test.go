package postgres_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/internal/pgtest"
	"github.com/sinkbus/sinkbus/replay"
	"github.com/sinkbus/sinkbus/replay/postgres"
	"github.com/sinkbus/sinkbus/replay/storagetest"
)

// open opens a storage on the test server in schema (a fresh one when
// empty), closed at the end of the test.
func open(t testing.TB, cfg postgres.Config) *postgres.Storage {
	t.Helper()
	if cfg.Pool == nil && cfg.URL == "" {
		cfg.Pool = pgtest.Pool(t)
	}
	if cfg.Schema == "" {
		cfg.Schema = pgtest.Schema(t)
	}
	s, err := postgres.Open(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// factory opens each storage of the conformance suite in a schema of its
// own; Reopen opens the same schema again.
func factory() storagetest.Factory {
	var mu sync.Mutex
	schemas := make(map[replay.Storage]string)
	return storagetest.Factory{
		New: func(t *testing.T) replay.Storage {
			schema := pgtest.Schema(t)
			s := open(t, postgres.Config{Schema: schema})
			mu.Lock()
			schemas[s] = schema
			mu.Unlock()
			return s
		},
		Reopen: func(t *testing.T, st replay.Storage) replay.Storage {
			require.NoError(t, st.Close())
			mu.Lock()
			schema := schemas[st]
			mu.Unlock()
			s := open(t, postgres.Config{Schema: schema})
			mu.Lock()
			schemas[s] = schema
			mu.Unlock()
			return s
		},
	}
}
