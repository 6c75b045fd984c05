package formats_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/bustest"
	"github.com/sinkbus/sinkbus/bus/formats"
)

// FuzzDecode feeds the documented integration bodies of bus/api/testdata,
// and mutations of them, to the parser behind the management API: it never
// panics, every refusal is ErrInvalid, and what it accepts survives its own
// masked JSON form (what a client reads back and may send again).
func FuzzDecode(f *testing.F) {
	seeds, err := filepath.Glob("../api/testdata/*.json")
	require.NoError(f, err)
	for _, name := range seeds {
		body, err := os.ReadFile(name)
		require.NoError(f, err)
		f.Add(body)
	}
	f.Add([]byte(`{"integration_type":"webhook","configuration":{"url":"https://example.com/hook","secret_key":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},"observes":["order.*"],"filter_conditions":{"payload":{"total":{"$gt":100}}}}`))
	f.Add([]byte(`{"integration_type":"temporary","callback_url":"https://example.com","starts_at":"2026-01-01T00:00:00Z","ends_at":"2026-01-02T00:00:00Z"}`))
	f.Add([]byte(`{"integration_type":"file","configuration":{"dir":"exports"},"delivery":{"retry":{"max_attempts":3}}}`))
	m := bustest.New(f).Integrations()
	f.Fuzz(func(t *testing.T, body []byte) {
		in, _, err := formats.Decode(m, body)
		if err != nil {
			assert.ErrorIs(t, err, bus.ErrInvalid)
			return
		}
		require.NotNil(t, in.Sink)
		out, err := json.Marshal(in.Masked())
		require.NoError(t, err)
		again, f, err := formats.Decode(m, out)
		require.NoError(t, err, "its own JSON %s is refused", out)
		assert.Equal(t, formats.Sinkbus, f)
		assert.Equal(t, in.Type(), again.Type())
		assert.Equal(t, len(in.Observes), len(again.Observes))
		if len(in.Observes) > 0 {
			assert.Equal(t, in.Observes, again.Observes)
		}
		assert.Equal(t, kindOf(in), kindOf(again))
	})
}

// kindOf is the integration's kind with the default spelled out.
func kindOf(in bus.Integration) bus.Kind {
	if in.Kind == "" {
		return bus.Permanent
	}
	return in.Kind
}
