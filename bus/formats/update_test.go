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
	"github.com/sinkbus/sinkbus/replay"
	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/webhook"
)

func TestUpdate_keeps_every_secret_sent_back_masked(t *testing.T) {
	tb, dir := savingBus(t)
	stored := webhook.Config{
		URL:       "https://erp:p4ssw0rd-long@erp.example.com/hooks",
		SecretKey: secret,
		Headers:   map[string]string{"X-Api-Key": "k-1234567890abcdef", "X-Team": "fulfilment-team"},
	}
	tb.Create(bus.Integration{ID: "erp", Observes: []string{"order.*"}, Sink: stored})

	// Read back (masked: keys, headers, the URL's password), change one
	// header and the observes, send everything back.
	got, err := tb.Integrations().Get(ctx, "erp")
	require.NoError(t, err)
	body, err := json.Marshal(got)
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(body, &doc))
	doc["observes"] = []string{"order.fulfilled"}
	doc["configuration"].(map[string]any)["headers"].(map[string]any)["X-Team"] = "billing-team"
	body, err = json.Marshal(doc)
	require.NoError(t, err)

	updated, _, err := formats.Update(ctx, tb.Integrations(), "erp", body)
	require.NoError(t, err)
	assert.Equal(t, []string{"order.fulfilled"}, updated.Observes)
	assert.Equal(t, sinks.Mask(secret), updated.Sink.(webhook.Config).SecretKey, "reads stay masked")

	// The stored configuration: the new header, every secret as it was.
	want := stored
	want.Headers = map[string]string{"X-Api-Key": "k-1234567890abcdef", "X-Team": "billing-team"}
	assert.Equal(t, want.Masked(), updated.Sink)
	assert.Equal(t, "https://erp:xxxxx@erp.example.com/hooks", updated.Sink.(webhook.Config).URL)
	assert.Equal(t, want, unmaskedSink(t, tb, dir, "erp"))
}

func TestUpdate_takes_new_secrets_and_refuses_a_type_change(t *testing.T) {
	tb, dir := savingBus(t)
	tb.Create(bus.Integration{ID: "erp", Sink: webhook.Config{URL: "https://erp.example.com/hooks", SecretKey: secret}})
	const next = "whsec_bmV3LXNlY3JldC1rZXktZm9yLXRlc3Rz"
	_, _, err := formats.Update(ctx, tb.Integrations(), "erp", []byte(`{"integration_type":"webhook",
		"configuration":{"url":"https://erp.example.com/hooks","secret_key":"`+next+`"}}`))
	require.NoError(t, err)
	assert.Equal(t, next, unmaskedSink(t, tb, dir, "erp").SecretKey)

	_, _, err = formats.Update(ctx, tb.Integrations(), "erp", []byte(`{"integration_type":"bustest"}`))
	require.ErrorIs(t, err, bus.ErrImmutable)
	_, _, err = formats.Update(ctx, tb.Integrations(), "nope", []byte(`{"integration_type":"bustest"}`))
	require.ErrorIs(t, err, bus.ErrNotFound)
	_, _, err = formats.Update(ctx, tb.Integrations(), "erp", []byte(`{"integration_type":"webhook","configuration":{"url":1}}`))
	require.ErrorIs(t, err, bus.ErrInvalid)
}

func TestUpdate_keeps_an_unchanged_sink_itself(t *testing.T) {
	tb := bustest.New(t)
	sink := tb.NewSinkIntegration(bus.Integration{ID: "rec", Observes: []string{"order.*"}})
	_, _, err := formats.Update(ctx, tb.Integrations(), "rec", []byte(`{"integration_type":"bustest","observes":["**"]}`))
	require.NoError(t, err)
	tb.MustPublish(bus.Event{Name: "cart.updated"})
	assert.Equal(t, "cart.updated", sink.WaitFor(t, 1)[0].Name, "the same recording sink goes on")
}

// savingBus is a test bus that saves its integrations in a directory, so
// that a test can read what is stored, secrets included.
func savingBus(t *testing.T) (*bustest.Bus, string) {
	dir := t.TempDir()
	return bustest.New(t, func(c *bus.Config) {
		c.DataDir = dir
		c.Storage = replay.NewMemory()
	}), dir
}

// unmaskedSink returns the stored webhook configuration of id, as a restart
// would read it.
func unmaskedSink(t *testing.T, tb *bustest.Bus, dir, id string) webhook.Config {
	t.Helper()
	return savedSink(t, tb, dir, id).(webhook.Config)
}

// savedSink returns the stored configuration of id, as a restart reads it.
func savedSink(t *testing.T, tb *bustest.Bus, dir, id string) sinks.Config {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "integrations.json"))
	require.NoError(t, err)
	var list []json.RawMessage
	require.NoError(t, json.Unmarshal(data, &list))
	for _, raw := range list {
		in, err := tb.Integrations().Decode(raw)
		require.NoError(t, err)
		if in.ID == id {
			return in.Sink
		}
	}
	t.Fatalf("integration %q not saved", id)
	return nil
}
