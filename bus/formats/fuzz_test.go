package formats_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/bustest"
	"github.com/sinkbus/sinkbus/bus/formats"
	"github.com/sinkbus/sinkbus/replay"
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

// FuzzBus_saved_integrations_reload: every integration Create accepts, in
// any shape, is saved in a form the next start reads back the same; and whatever
// integrations.json holds, the bus starts (what it cannot read is set
// aside, see TestBus_starts_whatever_its_stored_state_holds).
func FuzzBus_saved_integrations_reload(f *testing.F) {
	seeds, err := filepath.Glob("../api/testdata/*.json")
	require.NoError(f, err)
	for _, name := range seeds {
		body, err := os.ReadFile(name)
		require.NoError(f, err)
		f.Add(body, []byte(`[`+string(body)+`]`))
	}
	f.Add([]byte(`{"id":"f","name":"\u2028\"","integration_type":"webhook","configuration":{"url":"https://example.com/h?a=b"},
		"filter_conditions":{"payload":{"$and":[{"$or":[{"a":{"$eq":1}}]}]}}}`), []byte(`{`))
	f.Add([]byte(`{"integration_type":"file","configuration":{"dir":"erp"},"order_key":"payload.a.b"}`), []byte(`[null,1,"x",{}]`))
	open := func(t *testing.T, dir string) *bus.Bus {
		b, err := bus.New(bus.Config{DataDir: dir, Storage: replay.NewMemory(), AllowPrivateNetworks: true})
		require.NoError(t, err)
		return b
	}
	f.Fuzz(func(t *testing.T, body, file []byte) {
		dir := t.TempDir()
		b := open(t, dir)
		in, _, err := formats.Create(context.Background(), b.Integrations(), body)
		require.NoError(t, b.Close())
		if err == nil {
			b = open(t, dir)
			got, err := b.Integrations().Get(context.Background(), in.ID)
			require.NoError(t, err, "an integration the bus saved is not read back")
			want, _ := json.Marshal(in)
			again, _ := json.Marshal(got)
			assert.JSONEq(t, string(want), string(again))
			require.NoError(t, b.Close())
		}

		other := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(other, "integrations.json"), file, 0o600))
		require.NoError(t, open(t, other).Close())
	})
}
