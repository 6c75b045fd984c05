package filter_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/filter"
)

func TestPath_String(t *testing.T) {
	payload := []byte(`{"order":{"id":"o-1","number":12345678901234567890,"lines":[{"sku":"A"},{"sku":"B\u00e9"}],"note":null,"flags":{"gift":true}},"order.id":"flat"}`)
	for path, want := range map[string]string{
		"order.id":          "o-1",
		"order.number":      "12345678901234567890",
		"order.lines.1.sku": "Bé",
		"order.note":        "",
		"order.missing":     "",
		"order.flags":       `{"gift":true}`,
		"order.flags.gift":  "true",
		"order.id.deeper":   "",
	} {
		p, err := filter.NewPath(path)
		require.NoError(t, err, path)
		assert.Equal(t, want, p.String(payload), path)
	}
	p, err := filter.NewPath("order.id")
	require.NoError(t, err)
	assert.Equal(t, "", p.String([]byte(`{"order":{"id":"o-1"}`)), "invalid JSON has no key")
	assert.Equal(t, "second", p.String([]byte(`{"order":{"id":"first"},"order":{"id":"second"}}`)), "the last member wins, as in encoding/json")

	_, err = filter.NewPath("order..id")
	assert.EqualError(t, err, `segment 2 of the field path "order..id" is empty`)
}

func FuzzPath(f *testing.F) {
	f.Add("order.id", []byte(`{"order":{"id":"o-1"}}`))
	f.Add("a.0", []byte(`{"a":[1,2]}`))
	f.Fuzz(func(t *testing.T, path string, payload []byte) {
		p, err := filter.NewPath(path)
		if err != nil {
			return
		}
		got := p.String(payload)
		// Against encoding/json where the two must agree: a string value
		// reached through objects only.
		dec := json.NewDecoder(bytes.NewReader(payload))
		var cur any
		if !json.Valid(payload) || dec.Decode(&cur) != nil {
			assert.Empty(t, got, "invalid JSON has no key")
			return
		}
		for _, seg := range strings.Split(path, ".") {
			obj, ok := cur.(map[string]any)
			if !ok {
				return
			}
			cur = obj[seg]
		}
		if s, ok := cur.(string); ok {
			assert.Equal(t, s, got)
		}
	})
}
