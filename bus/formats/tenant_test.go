package formats_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/bustest"
	"github.com/sinkbus/sinkbus/bus/formats"
)

// Every shape carries an integration's tenant as "tenant": in a tenant's
// view a body naming another is refused as the body named it, and the
// tenant cannot change through a patch.
func TestFormats_carry_the_tenant_in_every_shape(t *testing.T) {
	tb := bustest.New(t)
	acme := tb.Integrations().Tenant("acme")
	for _, tc := range []struct {
		body, field string
	}{
		{`{"id":"own","tenant":"globex","integration_type":"bustest"}`, "tenant"},
		{`{"data":{"type":"integration","id":"own","tenant":"globex","integration_type":"bustest"}}`, "data.tenant"},
		{`{"id":"own","tenant":"globex","integration_type":"permanent","sink_type":"bustest"}`, "tenant"},
	} {
		_, _, err := formats.Create(ctx, acme, []byte(tc.body))
		require.ErrorIs(t, err, bus.ErrInvalid, tc.body)
		assert.Equal(t, []string{tc.field}, fieldsOf(err), tc.body)
	}

	in, _, err := formats.Create(ctx, acme, []byte(`{"data":{"type":"integration","id":"own","integration_type":"bustest"}}`))
	require.NoError(t, err)
	for _, shape := range []formats.Format{formats.Sinkbus, formats.ElasticPath, formats.NewStore} {
		out, err := formats.Render(shape, in, "https://shop.example.com/api")
		require.NoError(t, err)
		if shape == formats.ElasticPath {
			out = out["data"].(map[string]any)
			assert.Equal(t, "https://shop.example.com/api/tenants/acme/integrations/own", out["links"].(map[string]any)["self"])
		}
		assert.Equal(t, "acme", out["tenant"], shape)
	}
	_, _, err = formats.Patch(ctx, acme, "own", []byte(`{"data":{"tenant":"globex"}}`))
	require.ErrorIs(t, err, bus.ErrImmutable)
	assert.Equal(t, []string{"data.tenant"}, fieldsOf(err))
	_, _, err = formats.Patch(ctx, acme, "own", []byte(`{"data":{"tenant":"acme","name":"kept"}}`))
	require.NoError(t, err, "repeated unchanged")
}
