package formats_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/bustest"
	"github.com/sinkbus/sinkbus/bus/formats"
	"github.com/sinkbus/sinkbus/field"
)

// A YAML file declares the same integrations as its JSON twin.
func TestDecodeListYAML_reads_what_DecodeList_reads(t *testing.T) {
	m := bustest.New(t).Integrations()
	fromJSON, err := formats.DecodeList(m, []byte(`[
		{"id":"erp","name":"no","integration_type":"webhook","observes":["order.*"],
		 "filter_conditions":{"payload":{"total":{"$gt":100.5}}},
		 "configuration":{"url":"https://erp.example.com/hooks","secret_key":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
		 "concurrency":4},
		{"id":"ns","integration_type":"temporary","callback_url":"https://c.example.com",
		 "starts_at":"2026-01-01T00:00:00Z","ends_at":"2026-01-02T00:00:00Z"}
	]`))
	require.NoError(t, err)
	fromYAML, err := formats.DecodeListYAML(m, []byte(`
# the integrations the shop owns
- id: erp
  name: no            # YAML 1.1 would read false: here it stays the string
  integration_type: webhook
  observes: [order.*]
  filter_conditions:
    payload: {total: {$gt: 100.5}}
  configuration:
    url: https://erp.example.com/hooks
    secret_key: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
  concurrency: 4
- id: ns
  integration_type: temporary
  callback_url: https://c.example.com
  starts_at: 2026-01-01T00:00:00Z
  ends_at: "2026-01-02T00:00:00Z"
`))
	require.NoError(t, err)
	require.Len(t, fromYAML, 2)
	assert.Equal(t, "no", fromYAML[0].Name)
	assert.Equal(t, fromJSON, fromYAML)
}

// What YAML would read differently from what is written is refused, named.
func TestDecodeListYAML_refuses_what_would_change_a_value(t *testing.T) {
	m := bustest.New(t).Integrations()
	for _, c := range []struct{ body, field, says string }{
		{"- id: 123\n  integration_type: webhook\n  configuration: {url: https://a.example.com}\n", "[0].id", ""},
		{"- id: a\n  integration_type: webhook\n  concurrency: 0x10\n  configuration: {url: https://a.example.com}\n", "[0].concurrency", "decimal"},
		{"- id: a\n  integration_type: webhook\n  configuration: {url: https://a.example.com, secret_key: 0777}\n", "[0].configuration.secret_key", "decimal"},
		{"- id: a\n  enabled: True\n", "[0].enabled", "true or false"},
		{"- &x {id: a}\n- *x\n", "[1]", "aliases"},
		{"- id: a\n  id: b\n", "[0].id", "twice"},
		{"- <<: {id: a}\n", "[0].<<", "merge"},
		{"- id: !!binary aGVsbG8=\n", "[0].id", "tag"},
		{"{id: a}\n", "", "sequence"},
		{"- id: a\n---\n- id: b\n", "", "one YAML document"},
		{"- [unclosed\n", "", "must be YAML"},
		{"", "", "sequence"},
	} {
		_, err := formats.DecodeListYAML(m, []byte(c.body))
		require.ErrorIs(t, err, bus.ErrInvalid, c.body)
		var fe *field.Error
		for _, e := range field.Errors(err) {
			if e.Error() != bus.ErrInvalid.Error() {
				fe = e.(*field.Error)
				break
			}
		}
		require.NotNil(t, fe, "%s: %v", c.body, err)
		assert.Equal(t, c.field, fe.Field, c.body)
		assert.Contains(t, fe.Error(), c.says, c.body)
	}
}

func FuzzDecodeListYAML(f *testing.F) {
	f.Add([]byte("- id: erp\n  integration_type: webhook\n  configuration: {url: https://a.example.com}\n"))
	f.Add([]byte("- {id: a, observes: ['*'], concurrency: 2.5e1}\n- &x {id: b}\n- *x\n"))
	f.Add([]byte("- id: a\n  filter_conditions: {payload: {n: {$in: [1, -2.5, null, true, x]}}}\n"))
	m := bustest.New(f).Integrations()
	f.Fuzz(func(t *testing.T, body []byte) {
		list, err := formats.DecodeListYAML(m, body)
		if err != nil {
			assert.ErrorIs(t, err, bus.ErrInvalid)
			return
		}
		for _, in := range list {
			assert.NotNil(t, in.Sink)
		}
	})
}

// The same declaration, kept in YAML.
func ExampleDecodeListYAML() {
	b, _ := bus.New(bus.Config{})
	defer b.Close()
	file := []byte(`
- id: erp
  integration_type: webhook
  observes: [order.*]
  configuration:
    url: https://erp.example.com/hooks
`)
	declared, err := formats.DecodeListYAML(b.Integrations(), file)
	if err != nil {
		panic(err)
	}
	fmt.Println(declared[0].ID, declared[0].Type(), declared[0].Observes)
	// Output: erp webhook [order.*]
}
