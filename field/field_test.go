package field_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/field"
)

func TestProblems_name_every_field_and_Prefix_re_roots_them(t *testing.T) {
	var p field.Problems
	assert.NoError(t, p.Err())
	p.Add("url", "must be https or http")
	p.Merge("addresses", errors.Join(field.New("[1]", "empty"), field.New("", "at most %d", 10)))
	p.Merge("headers", errors.New("not an object"))
	p.Merge("ignored", nil)
	err := p.Err()
	require.Error(t, err)
	var fields []string
	for _, e := range field.Errors(field.Prefix("configuration", err)) {
		fields = append(fields, e.Error())
	}
	assert.Equal(t, []string{
		"configuration.url: must be https or http",
		"configuration.addresses[1]: empty",
		"configuration.addresses: at most 10",
		"configuration.headers: not an object",
	}, fields)
}

func TestDecodeStrict_names_the_field_and_never_quotes_a_value(t *testing.T) {
	var c struct {
		URL     string `json:"url"`
		Timeout int    `json:"timeout"`
	}
	err := field.DecodeStrict([]byte(`{"url":"https://x","secret":"hunter2-secret"}`), &c)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "secret", "names the unknown field")
	assert.NotContains(t, err.Error(), "hunter2")
	err = field.DecodeStrict([]byte(`{"timeout":"hunter2-secret"}`), &c)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "timeout")
	assert.NotContains(t, err.Error(), "hunter2")
	assert.Error(t, field.DecodeStrict([]byte(`{"url":"a"} {}`), &c), "trailing data")
	assert.NoError(t, field.DecodeStrict([]byte(`{"url":"a","timeout":3}`), &c))
	assert.Equal(t, 3, c.Timeout)
}

func TestErrors_flattens_joined_and_wrapped_errors(t *testing.T) {
	sentinel := errors.New("sinkbus: invalid")
	inner := errors.Join(field.New("a", "bad"), field.New("b", "worse"))
	got := field.Errors(fmt.Errorf("%w: %w", sentinel, inner))
	assert.Equal(t, []error{
		&field.Error{Rule: "sinkbus: invalid"},
		&field.Error{Field: "a", Rule: "bad"},
		&field.Error{Field: "b", Rule: "worse"},
	}, got)
	assert.Nil(t, field.Errors(nil))
	assert.Equal(t, "plain", (&field.Error{Rule: "plain"}).Error())
	assert.Equal(t, "a: bad", field.New("a", "bad").Error())
}

// Type errors say what the value should have been, without quoting it; a
// value's own decoder failing (a time) is named by its member, which
// encoding/json leaves out.
func TestDecodeStrict_names_the_field_and_the_kind(t *testing.T) {
	type target struct {
		N    int        `json:"n"`
		U    uint       `json:"u"`
		F    float64    `json:"f"`
		S    string     `json:"s"`
		B    bool       `json:"b"`
		T    *time.Time `json:"t"`
		List []string   `json:"list"`
	}
	for body, want := range map[string]string{
		`{"n":2.5}`:         "n: must be an integer",
		`{"n":1e30}`:        "n: must be an integer",
		`{"n":"8"}`:         "n: must be an integer, not a string",
		`{"u":-1}`:          "u: must be a non-negative integer",
		`{"f":"x"}`:         "f: must be a number, not a string",
		`{"s":1}`:           "s: must be a string, not a number",
		`{"b":"yes"}`:       "b: must be a boolean, not a string",
		`{"list":{}}`:       "list: must be an array, not an object",
		`{"s":"x","t":123}`: `t: must be a time such as "2026-01-01T00:00:00Z"`,
		`{"t":"yesterday"}`: `t: must be a time such as "2026-01-01T00:00:00Z"`,
		`{"colour":"red"}`:  "colour: unknown field",
		`{"s":"x"} {}`:      "unexpected data after the JSON object",
	} {
		var v target
		err := field.DecodeStrict([]byte(body), &v)
		require.Error(t, err, body)
		assert.Equal(t, want, err.Error(), body)
		assert.NotContains(t, err.Error(), "yesterday", "never quotes a value")
	}
}
