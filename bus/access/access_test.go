package access_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/access"
)

func TestCaller_Validate_refuses_nobody_and_invalid_tenants(t *testing.T) {
	require.NoError(t, access.Admin().Validate())
	require.NoError(t, access.Tenant("acme.eu").Validate())
	assert.ErrorIs(t, access.Caller{}.Validate(), access.ErrNobody)
	assert.ErrorIs(t, access.Tenant("").Validate(), access.ErrNobody)
	for _, name := range []string{"a/b", "-acme", "acme corp", "acme\n"} {
		assert.Error(t, access.Tenant(name).Validate(), "%q", name)
	}
	assert.Equal(t, "admin", access.Admin().String())
	assert.Equal(t, "tenant acme", access.Tenant("acme").String())
	assert.Equal(t, "nobody", access.Caller{}.String())
}

// Nobody's view, and an invalid tenant's, fails at every call: a hook that
// forgets to say who called reaches nothing.
func TestCaller_Integrations_of_nobody_reaches_nothing(t *testing.T) {
	b, err := bus.New(bus.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	ctx := context.Background()
	_, err = b.Integrations().Create(ctx, bus.Integration{ID: "erp-sync", Sink: bus.HandlerFunc(func(context.Context, bus.Event) error { return nil })})
	require.NoError(t, err)
	for _, c := range []access.Caller{{}, access.Tenant("a/b")} {
		_, err := c.Integrations(b).List(ctx)
		assert.Error(t, err, c.String())
		_, err = c.Integrations(b).Get(ctx, "erp-sync")
		assert.Error(t, err, c.String())
	}
	list, err := access.Tenant("acme").Integrations(b).List(ctx)
	require.NoError(t, err)
	assert.Empty(t, list)
	list, err = access.Admin().Integrations(b).List(ctx)
	require.NoError(t, err)
	assert.Len(t, list, 1)
}

func TestBearer_maps_each_token_to_its_caller(t *testing.T) {
	who, err := access.Bearer(map[string]access.Caller{"a-token": access.Tenant("acme"), "admin-token": access.Admin()})
	require.NoError(t, err)
	for _, tc := range []struct {
		header string
		want   access.Caller
		err    error
	}{
		{"Bearer a-token", access.Tenant("acme"), nil},
		{"Bearer admin-token", access.Admin(), nil},
		{"Bearer a-token ", access.Caller{}, access.ErrUnauthenticated},
		{"bearer a-token", access.Caller{}, access.ErrUnauthenticated},
		{"Bearer ", access.Caller{}, access.ErrUnauthenticated},
		{"", access.Caller{}, access.ErrUnauthenticated},
		{"Bearer other", access.Caller{}, access.ErrUnauthenticated},
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		if tc.header != "" {
			r.Header.Set("Authorization", tc.header)
		}
		got, err := who(r)
		assert.ErrorIs(t, err, tc.err, tc.header)
		assert.Equal(t, tc.want, got, tc.header)
	}

	for _, bad := range []map[string]access.Caller{
		{"": access.Admin()}, {"t": {}}, {"t": access.Tenant("a/b")},
	} {
		_, err := access.Bearer(bad)
		assert.Error(t, err)
	}
}

// Check gives the hook's caller, or its error; a caller that is nobody or
// an invalid tenant is refused (not as unauthenticated) and logged with
// the request.
func TestIdentify_Check_refuses_and_logs_the_hooks_mistakes(t *testing.T) {
	var logged strings.Builder
	logger := slog.New(slog.NewTextHandler(&logged, nil))
	req := httptest.NewRequest(http.MethodGet, "/integrations", nil)

	c, err := access.Anyone(access.Tenant("acme")).Check(req, logger)
	require.NoError(t, err)
	assert.Equal(t, access.Tenant("acme"), c)
	_, err = access.Identify(func(*http.Request) (access.Caller, error) {
		return access.Caller{}, access.ErrUnauthenticated
	}).Check(req, logger)
	assert.ErrorIs(t, err, access.ErrUnauthenticated)
	assert.Empty(t, logged.String())

	for _, bad := range []access.Caller{{}, access.Tenant("no/slash")} {
		logged.Reset()
		_, err = access.Anyone(bad).Check(req, logger, "request_id", "r-1")
		require.Error(t, err, bad.String())
		assert.NotErrorIs(t, err, access.ErrUnauthenticated)
		assert.Contains(t, logged.String(), "level=ERROR")
		assert.Contains(t, logged.String(), "path=/integrations request_id=r-1")
	}
}
