package filter_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/filter"
)

// refMatch is the obvious recursive matcher of one pattern, to check the
// trie against.
func refMatch(pattern, name []string) bool {
	if len(pattern) == 0 {
		return len(name) == 0
	}
	switch pattern[0] {
	case "**":
		for i := 0; i <= len(name); i++ {
			if refMatch(pattern[1:], name[i:]) {
				return true
			}
		}
		return false
	case "*":
		return len(name) > 0 && refMatch(pattern[1:], name[1:])
	}
	return len(name) > 0 && name[0] == pattern[0] && refMatch(pattern[1:], name[1:])
}

func split(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ".")
}

func refMatchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if p == "*" {
			p = "**"
		}
		if len(name) > filter.MaxNameLen && strings.Trim(strings.ReplaceAll(p, "**", ""), ".") != "" {
			continue // documented: such a name matches only "*" and "**" (as "**.**" does)
		}
		if refMatch(split(p), split(name)) {
			return true
		}
	}
	return false
}

func TestFilter_matches_like_the_reference(t *testing.T) {
	patterns := []string{"a.**.b.**.c", "**.x.*", "*.y.**", "a.b", "**.**.z", "q.*.*.r"}
	segs := []string{"a", "b", "c", "x", "y", "z", "q", "r"}
	// every name of up to 5 segments over segs, against each pattern alone
	// and against all of them in one trie
	var names []string
	var grow func(prefix string, depth int)
	grow = func(prefix string, depth int) {
		names = append(names, prefix)
		if depth == 5 {
			return
		}
		for _, s := range segs {
			if prefix == "" {
				grow(s, depth+1)
			} else {
				grow(prefix+"."+s, depth+1)
			}
		}
	}
	grow("", 0)
	all := mustCompile(t, patterns, filter.Conditions{})
	for _, p := range patterns {
		f := mustCompile(t, []string{p}, filter.Conditions{})
		for _, name := range names {
			require.Equal(t, refMatchAny([]string{p}, name), f.Match(name, nil), "%q vs %q", p, name)
		}
	}
	for _, name := range names {
		require.Equal(t, refMatchAny(patterns, name), all.Match(name, nil), name)
	}
}

// Nested "**" would take exponential time without the memo.
func TestFilter_nested_double_star_is_fast(t *testing.T) {
	pattern := strings.Repeat("**.a.", 40) + "b"
	name := strings.Repeat("a.", 126) + "c"
	f := mustCompile(t, []string{pattern}, filter.Conditions{})
	assert.False(t, f.Match(name, nil))
	assert.True(t, f.Match(strings.Repeat("a.", 126)+"b", nil))
}

func TestFilter_match_name_allocates_nothing(t *testing.T) {
	cases := [][]string{{"order.*", "**.created", "cart.**.added"}}
	if !raceEnabled {
		cases = append(cases, []string{"a.**.b.**.c"}) // nested: pooled memo
	}
	for _, patterns := range cases {
		f := mustCompile(t, patterns, filter.Conditions{
			Entities: filter.Selector{Exclude: []string{"audit"}},
			Events:   filter.Selector{Include: []string{"**"}},
		})
		allocs := testing.AllocsPerRun(100, func() {
			f.Match("cart.line.item.added", nil)
			f.Match("a.x.b.y.c", nil)
		})
		assert.Zero(t, allocs, patterns)
	}
}

func FuzzValidatePattern(f *testing.F) {
	for _, s := range []string{"order.fulfilled", "*", "**", "a.**.b", "**.x", "x.**", "a.*.b", "ord*", "a..b", "", ".", "***", "a.**.**.b"} {
		f.Add(s, "seg")
	}
	f.Fuzz(func(t *testing.T, pattern, fill string) {
		err := filter.ValidatePattern(pattern)
		fl, cerr := filter.Compile([]string{pattern}, filter.Conditions{})
		require.Equal(t, err == nil, cerr == nil, "%q: %v / %v", pattern, err, cerr)
		if err != nil {
			require.ErrorIs(t, err, filter.ErrInvalidPattern)
			return
		}
		if filter.ValidateName(fill) != nil || strings.Contains(fill, ".") {
			fill = "x"
		}
		// names built from the pattern: "*" becomes fill, "**" zero, one
		// or two segments
		for _, stars := range [][]string{nil, {fill}, {fill, "y"}} {
			var segs []string
			for _, seg := range strings.Split(pattern, ".") {
				switch {
				case seg == "*" && pattern == "*":
					segs = append(segs, stars...)
				case seg == "*":
					segs = append(segs, fill)
				case seg == "**":
					segs = append(segs, stars...)
				default:
					segs = append(segs, seg)
				}
			}
			name := strings.Join(segs, ".")
			require.True(t, fl.Match(name, nil), "%q should match %q", pattern, name)
		}
	})
}

func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"order.fulfilled", "be-observer.catalog_product_create", "a..b", "", "é", "*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := filter.ValidateName(name)
		if err != nil {
			require.ErrorIs(t, err, filter.ErrInvalidName)
			return
		}
		// a valid name is a valid pattern that matches itself only
		fl, cerr := filter.Compile([]string{name}, filter.Conditions{})
		require.NoError(t, cerr)
		require.True(t, fl.Match(name, nil))
		require.False(t, fl.Match(name+".x", nil))
	})
}

func FuzzCompile(f *testing.F) {
	f.Add("order.fulfilled\norder.*\n**.deleted", "order.line.deleted")
	f.Add("a.**.b.**.c\n*.x", "a.b.x.b.c")
	f.Add("*", "")
	f.Add("**.**\na", "a.b.c")
	f.Add("ord*\n", "order")
	f.Add("order.created\ncart.updated", "cart.updated") // literal: matched by comparison
	f.Add("order.created", "order.created.x")
	f.Fuzz(func(t *testing.T, patterns, name string) {
		ps := strings.Split(patterns, "\n")
		if len(ps) > 20 || strings.Count(name, ".") > 12 {
			return // keep the reference matcher quick
		}
		fl, err := filter.Compile(ps, filter.Conditions{})
		valid := true
		for _, p := range ps {
			valid = valid && filter.ValidatePattern(p) == nil
		}
		require.Equal(t, valid, err == nil, "%q: %v", ps, err)
		if err != nil {
			return
		}
		require.Equal(t, refMatchAny(ps, name), fl.Match(name, nil), "%q vs %q", ps, name)
	})
}

func FuzzConditions(f *testing.F) {
	const payload = `{"total": 120.5, "currency": "EUR", "customer": {"address": {"country": "DE"}}, "items": [{"sku": "A"}], "n": null}`
	for _, c := range []string{
		`{"total": {"$gt": 100}}`,
		`{"$or": [{"currency": "EUR"}, {"customer.address.country": {"$in": ["DE", "AT"]}}]}`,
		`{"$not": {"items.0.sku": {"$exist": true}}}`,
		`{"$and": [{"n": null}, {"missing": {"$nin": [1]}}]}`,
		`{"total": {"$lte": "z", "$neq": [1, {"a": 2}]}}`,
		`{"$and": []}`, `[]`, `{"a": {"$bad": 1}}`, `{`, `null`,
	} {
		f.Add(c, payload)
		f.Add(c, `[1, "x", {"total": 1e999}]`)
		f.Add(c, `{"total": `)
	}
	f.Fuzz(func(t *testing.T, conditions, payload string) {
		fl, err := filter.Compile(nil, filter.Conditions{Payload: json.RawMessage(conditions)})
		if err != nil {
			return
		}
		got := fl.Match("order.created", []byte(payload))
		require.Equal(t, fl.MatchDecoded("order.created", []byte(payload)), got)
		if fl.NeedsPayload() && payload != "" && !json.Valid([]byte(payload)) {
			require.False(t, got, "invalid JSON never matches")
		}
	})
}

// FuzzPayload checks the one-pass payload scan against encoding/json: the
// same documents are valid, and the same values are found at each path.
func FuzzPayload(f *testing.F) {
	for _, p := range []string{
		`{"a": {"b": [1, {"c": "x"}]}, "d": -1.5e3, "e": "\u00e9\n", "f": [true, false, null]}`,
		`{"a": {"b": 1}, "a": {"c": 2}}`,
		`{"a": [1], "a": {"0": 1}}`,
		"{\"\xff\": \"\xff\", \"k\\u00e9\": 1}",
		`[{"a": 1}]`, `"a"`, `01`, `1.`, `-`, `1e`, `{"a":1,}`, `[1,]`, `{"a" 1}`, `nul`, "\"\x01\"", `"\x"`, `"\u12"`,
	} {
		f.Add(p)
	}
	var filters []*filter.Filter
	for _, c := range []string{
		`{"never": {"$exist": false}}`,
		`{"a": {"$exist": true}}`,
		`{"a.b": {"$in": [1, "x", null]}}`,
		`{"a.b.1.c": {"$gte": "x"}}`,
		`{"a.0": {"$eq": {"0": 1}}}`,
		`{"a.0": 1}`,
		`{"d": {"$lt": 0}}`,
		`{"e": "é\n"}`,
		`{"f.2": null}`,
		`{"\ufffd": "\ufffd"}`,
		`{"kéy": 1}`,
		`{"0": {"$neq": 1}}`,
	} {
		fl, err := filter.Compile(nil, filter.Conditions{Payload: json.RawMessage(c)})
		require.NoError(f, err)
		filters = append(filters, fl)
	}
	f.Fuzz(func(t *testing.T, payload string) {
		valid := payload == "" || json.Valid([]byte(payload)) // empty is null
		require.Equal(t, valid, filters[0].Match("x", []byte(payload)), "only valid JSON matches")
		for _, fl := range filters[1:] {
			require.Equal(t, fl.MatchDecoded("x", []byte(payload)), fl.Match("x", []byte(payload)))
		}
	})
}
