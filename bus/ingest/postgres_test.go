package ingest_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/ingest"
	"github.com/sinkbus/sinkbus/internal/pgtest"
)

// On a bus the replicas share (Config.Postgres), the dedupe window is
// shared too: a uid published through one replica is a duplicate on the
// other, and a conflict with another value.
func TestHandler_dedupes_across_replicas_on_postgres(t *testing.T) {
	pool, schema := pgtest.Pool(t), pgtest.Schema(t)
	var servers []*httptest.Server
	var buses []*bus.Bus
	for range 2 {
		b, err := bus.New(bus.Config{Postgres: &bus.Postgres{Pool: pool, Schema: schema}})
		require.NoError(t, err)
		t.Cleanup(func() { _ = b.Close() })
		h, err := ingest.New(b, ingest.Options{Authenticate: ingest.Bearer(token)})
		require.NoError(t, err)
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		servers, buses = append(servers, srv), append(buses, b)
	}
	post := func(srv *httptest.Server, body string) (int, string) {
		req, err := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	code, body := post(servers[0], starterKitBody)
	require.Equal(t, http.StatusOK, code, body)
	assert.NotContains(t, body, "duplicate")
	code, body = post(servers[1], starterKitBody)
	require.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, body, `"duplicate":true`, "the other replica knows the uid")
	code, body = post(servers[1], strings.Replace(starterKitBody, `"price": 1`, `"price": 2`, 1))
	assert.Equal(t, http.StatusConflict, code, body)
	assert.Equal(t, uint64(2), buses[1].Events().Head(), "published once")
}
