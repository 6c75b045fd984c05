package filter_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/field"
	"github.com/sinkbus/sinkbus/filter"
)

func TestValidateName(t *testing.T) {
	valid := []string{
		"order",
		"order.fulfilled",
		"be-observer.catalog_product_create",
		"urn:order.v2.created",
		"A.b.C-d_e:f.0",
		strings.Repeat("a", filter.MaxNameLen),
	}
	for _, name := range valid {
		assert.NoError(t, filter.ValidateName(name), name)
	}

	invalid := []struct {
		name, rule string
	}{
		{"", "empty event name"},
		{strings.Repeat("a", 256), "256 bytes long; the limit is 255"},
		{".order", "segment 1 is empty"},
		{"order.", "segment 2 is empty"},
		{"order..fulfilled", "segment 2 is empty"},
		{"order.ful#filled", `segment 2 "ful#filled": character "#" is not allowed (use A-Z a-z 0-9 _ : -)`},
		{"order.*", `segment 2 "*": character "*" is not allowed (use A-Z a-z 0-9 _ : -)`},
		{"order.**", `segment 2 "**": character "*" is not allowed (use A-Z a-z 0-9 _ : -)`},
		{"order fulfilled", `segment 1 "order fulfilled": character " " is not allowed (use A-Z a-z 0-9 _ : -)`},
		{"order.é", `segment 2 "é": character "é" is not allowed (use A-Z a-z 0-9 _ : -)`},
		{"order.\xff", `segment 2 "\xff": character "\xff" is not allowed (use A-Z a-z 0-9 _ : -)`},
		{"a.b.c/d", `segment 3 "c/d": character "/" is not allowed (use A-Z a-z 0-9 _ : -)`},
	}
	for _, tc := range invalid {
		err := filter.ValidateName(tc.name)
		require.Error(t, err, tc.name)
		assert.ErrorIs(t, err, filter.ErrInvalidName)
		assert.Equal(t, "sinkbus: invalid event name: "+tc.rule, err.Error())
		var fe *field.Error
		require.True(t, errors.As(err, &fe))
		assert.Equal(t, &field.Error{Rule: tc.rule}, fe)
	}
}

func TestValidatePattern(t *testing.T) {
	valid := []string{"order.fulfilled", "*", "**", "order.*", "*.created", "**.created", "order.**", "a.**.b", "**.**", "*.*.*"}
	for _, p := range valid {
		assert.NoError(t, filter.ValidatePattern(p), p)
	}

	invalid := []struct {
		pattern, rule string
	}{
		{"", "empty pattern"},
		{"order.ord*", `segment 2 "ord*": a wildcard must be a whole segment`},
		{"*order", `segment 1 "*order": a wildcard must be a whole segment`},
		{"order.***", `segment 2 "***": a wildcard must be a whole segment`},
		{"order.*.", "segment 3 is empty"},
		{"order.?", `segment 2 "?": character "?" is not allowed (use A-Z a-z 0-9 _ : -)`},
		{strings.Repeat("*.", 128), "256 bytes long; the limit is 255"},
	}
	for _, tc := range invalid {
		err := filter.ValidatePattern(tc.pattern)
		require.Error(t, err, tc.pattern)
		assert.ErrorIs(t, err, filter.ErrInvalidPattern)
		assert.NotErrorIs(t, err, filter.ErrInvalidName)
		assert.Equal(t, "sinkbus: invalid pattern: "+tc.rule, err.Error())
	}
}

func TestValidateName_field_error_can_be_prefixed(t *testing.T) {
	err := field.Prefix("events[3].name", filter.ValidateName("order..x"))
	assert.Equal(t, []error{&field.Error{Field: "events[3].name", Rule: "segment 2 is empty"}}, field.Errors(err))
}
