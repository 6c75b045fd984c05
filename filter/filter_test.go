package filter_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/field"
	"github.com/sinkbus/sinkbus/filter"
)

func mustCompile(t testing.TB, observes []string, c filter.Conditions) *filter.Filter {
	t.Helper()
	f, err := filter.Compile(observes, c)
	require.NoError(t, err)
	return f
}

func TestFilter_observes_patterns(t *testing.T) {
	tests := []struct {
		observes []string
		match    []string
		miss     []string
	}{
		{nil, []string{"order.fulfilled", "a", "a.b.c.d"}, nil},
		{[]string{}, []string{"order.fulfilled"}, nil},
		{[]string{"order.fulfilled"}, []string{"order.fulfilled"}, []string{"order", "order.fulfilled.x", "x.order.fulfilled", "order.fulfille", "Order.fulfilled"}},
		{[]string{"*"}, []string{"order", "order.fulfilled", "a.b.c.d.e"}, nil},
		{[]string{"**"}, []string{"order", "order.fulfilled", "a.b.c.d.e"}, nil},
		{[]string{"order.*"}, []string{"order.fulfilled", "order.created"}, []string{"order", "order.a.b", "cart.created"}},
		{[]string{"*.created"}, []string{"order.created", "cart.created"}, []string{"created", "order.x.created", "order.updated"}},
		{[]string{"*.*"}, []string{"a.b"}, []string{"a", "a.b.c"}},
		{[]string{"order.**"}, []string{"order", "order.fulfilled", "order.a.b.c"}, []string{"orders", "cart.order", "cart"}},
		{[]string{"**.created"}, []string{"created", "order.created", "a.b.c.created"}, []string{"order.created.x", "order"}},
		{[]string{"a.**.b"}, []string{"a.b", "a.x.b", "a.x.y.z.b", "a.b.b", "a.b.x.b"}, []string{"a", "b", "a.b.c", "x.a.b", "a.x"}},
		{[]string{"a.**.b.**.c"}, []string{"a.b.c", "a.x.b.y.c", "a.b.b.c.c", "a.1.2.b.3.4.c"}, []string{"a.c.b", "a.b", "a.b.c.d"}},
		{[]string{"**.**"}, []string{"x", "x.y"}, nil},
		{[]string{"a.*.**"}, []string{"a.b", "a.b.c.d"}, []string{"a"}},
		{[]string{"a.**.*"}, []string{"a.b", "a.b.c.d"}, []string{"a"}},
		{[]string{"**.b.*"}, []string{"b.c", "a.b.c", "a.b.b.b"}, []string{"b", "a.b", "a.b.c.d"}},
		// several patterns share the trie
		{
			[]string{"order.fulfilled", "order.*.shipped", "cart.**", "*.deleted"},
			[]string{"order.fulfilled", "order.line.shipped", "cart", "cart.item.added", "user.deleted", "order.deleted"},
			[]string{"order.created", "order.shipped", "user.created", "user.a.deleted"},
		},
		{[]string{"order.created", "order.*"}, []string{"order.created", "order.updated"}, []string{"order"}},
		{[]string{"order.**", "order.created"}, []string{"order.created", "order"}, []string{"cart.created"}},
	}
	for _, tc := range tests {
		f := mustCompile(t, tc.observes, filter.Conditions{})
		assert.False(t, f.NeedsPayload())
		for _, name := range tc.match {
			assert.True(t, f.Match(name, nil), "%q should match %q", tc.observes, name)
		}
		for _, name := range tc.miss {
			assert.False(t, f.Match(name, nil), "%q should not match %q", tc.observes, name)
		}
	}
}

func TestFilter_names_longer_than_the_limit(t *testing.T) {
	long := strings.Repeat("a.", 200) + "a"
	assert.True(t, mustCompile(t, nil, filter.Conditions{}).Match(long, nil))
	assert.True(t, mustCompile(t, []string{"*"}, filter.Conditions{}).Match(long, nil))
	assert.True(t, mustCompile(t, []string{"x", "**"}, filter.Conditions{}).Match(long, nil))
	assert.False(t, mustCompile(t, []string{"a.**"}, filter.Conditions{}).Match(long, nil))
	assert.True(t, mustCompile(t, []string{"a.**"}, filter.Conditions{}).Match(long[:255], nil))
}

func TestFilter_keeps_its_own_patterns(t *testing.T) {
	for _, observes := range [][]string{{"order.created", "cart.updated"}, {"order.*", "cart.updated"}} {
		f, err := filter.Compile(observes, filter.Conditions{})
		require.NoError(t, err)
		observes[1] = "cart.deleted" // the caller reuses its slice
		assert.True(t, f.MatchName("cart.updated"), "%q", observes)
		assert.False(t, f.MatchName("cart.deleted"), "%q", observes)
	}
}

func TestFilter_nil_matches_everything(t *testing.T) {
	var f *filter.Filter
	assert.True(t, f.Match("order.fulfilled", []byte("not json")))
	assert.False(t, f.NeedsPayload())
}

func TestFilter_selectors(t *testing.T) {
	tests := []struct {
		name  string
		obs   []string
		c     filter.Conditions
		match []string
		miss  []string
	}{
		{
			name:  "entity include",
			c:     filter.Conditions{Entities: filter.Selector{Include: []string{"order", "cart"}}},
			match: []string{"order.created", "cart.updated", "order"},
			miss:  []string{"user.created", "orders.created"},
		},
		{
			name:  "entity exclude",
			c:     filter.Conditions{Entities: filter.Selector{Exclude: []string{"user"}}},
			match: []string{"order.created", "username.changed"},
			miss:  []string{"user.created", "user"},
		},
		{
			name:  "entity include wildcard with exclude",
			c:     filter.Conditions{Entities: filter.Selector{Include: []string{"*"}, Exclude: []string{"audit"}}},
			match: []string{"order.created"},
			miss:  []string{"audit.read"},
		},
		{
			name:  "event include",
			c:     filter.Conditions{Events: filter.Selector{Include: []string{"order.created", "cart.*"}}},
			match: []string{"order.created", "cart.updated"},
			miss:  []string{"order.updated", "cart.item.added"},
		},
		{
			name:  "event exclude",
			c:     filter.Conditions{Events: filter.Selector{Exclude: []string{"**.deleted"}}},
			match: []string{"order.created"},
			miss:  []string{"order.deleted", "order.line.deleted"},
		},
		{
			name: "all together",
			obs:  []string{"order.**", "cart.**", "user.**"},
			c: filter.Conditions{
				Entities: filter.Selector{Include: []string{"order", "cart"}, Exclude: []string{"cart"}},
				Events:   filter.Selector{Include: []string{"*.created", "*.updated"}, Exclude: []string{"order.updated"}},
			},
			match: []string{"order.created"},
			miss:  []string{"order.updated", "order.deleted", "cart.created", "user.created", "invoice.created"},
		},
		{
			name:  "exclude wins over include",
			c:     filter.Conditions{Events: filter.Selector{Include: []string{"order.created"}, Exclude: []string{"order.created"}}},
			match: nil,
			miss:  []string{"order.created"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := mustCompile(t, tc.obs, tc.c)
			for _, name := range tc.match {
				assert.True(t, f.Match(name, nil), name)
			}
			for _, name := range tc.miss {
				assert.False(t, f.Match(name, nil), name)
			}
		})
	}
}

func TestFilter_payload_operators(t *testing.T) {
	const payload = `{
		"total": 120.5, "count": 3, "big": 12345678901234567890, "currency": "EUR",
		"paid": true, "note": null, "created_at": "2026-03-01T10:00:00Z",
		"customer": {"vip": false, "address": {"country": "DE", "zip": "10115"}},
		"items": [{"sku": "A-1", "qty": 2}, {"sku": "B-2", "qty": 1}],
		"tags": ["gift", "express"],
		"0": "zero key",
		"neg": -10, "negzero": -0, "huge": 1234567890123456789012345678901234567890
	}`
	tests := []struct {
		cond string
		want bool
	}{
		// literals: implicit $eq, deep equality
		{`{"currency": "EUR"}`, true},
		{`{"currency": "USD"}`, false},
		{`{"count": 3}`, true},
		{`{"count": 3.0}`, true},
		{`{"count": 3e0}`, true},
		{`{"count": "3"}`, false},
		{`{"paid": true}`, true},
		{`{"paid": "true"}`, false},
		{`{"note": null}`, true},
		{`{"missing": null}`, false},
		{`{"customer.address": {"zip": "10115", "country": "DE"}}`, true},
		{`{"customer.address": {"country": "DE"}}`, false},
		{`{"tags": ["gift", "express"]}`, true},
		{`{"tags": ["express", "gift"]}`, false},
		{`{"big": 12345678901234567890}`, true},
		// paths
		{`{"customer.address.country": "DE"}`, true},
		{`{"items.0.sku": "A-1"}`, true},
		{`{"items.1.qty": 1}`, true},
		{`{"items.2.sku": "C-3"}`, false},
		{`{"items.sku": "A-1"}`, false},
		{`{"0": "zero key"}`, true},
		{`{"currency.x": {"$exist": false}}`, true},
		{`{"items.-1.sku": {"$exist": true}}`, false},
		// $eq / $neq
		{`{"total": {"$eq": 120.5}}`, true},
		{`{"total": {"$eq": 120.50}}`, true},
		{`{"total": {"$neq": 120.5}}`, false},
		{`{"currency": {"$neq": "USD"}}`, true},
		{`{"missing": {"$neq": "USD"}}`, true},
		{`{"missing": {"$eq": "USD"}}`, false},
		{`{"count": {"$neq": "3"}}`, true},
		{`{"customer": {"$eq": {"vip": false, "address": {"country": "DE", "zip": "10115"}}}}`, true},
		{`{"customer.address": {"$eq": {"$gt": 1}}}`, false},
		// ordering on numbers
		{`{"total": {"$gt": 100}}`, true},
		{`{"total": {"$gt": 120.5}}`, false},
		{`{"total": {"$gte": 120.5}}`, true},
		{`{"total": {"$lt": 121}}`, true},
		{`{"total": {"$lte": 120.4}}`, false},
		{`{"count": {"$gt": 2, "$lt": 4}}`, true},
		{`{"count": {"$gt": 3, "$lt": 4}}`, false},
		{`{"big": {"$gt": 12345678901234567889}}`, true},
		{`{"big": {"$gt": 1e300}}`, false},
		{`{"count": {"$lt": 1e400}}`, true},
		{`{"neg": {"$lt": -9}}`, true},
		{`{"neg": {"$gt": -11, "$lt": 3}}`, true},
		{`{"neg": {"$gte": -9}}`, false},
		{`{"negzero": 0}`, true},
		{`{"negzero": {"$gt": -1, "$lt": 1}}`, true},
		{`{"huge": {"$gt": 1234567890123456789012345678901234567889}}`, true},
		{`{"huge": {"$gte": 1234567890123456789012345678901234567891}}`, false},
		{`{"huge": {"$lt": -1234567890123456789012345678901234567891}}`, false},
		{`{"huge": {"$gt": 1e39, "$lt": 1.3e39}}`, true},
		// ordering on strings, RFC 3339 timestamps
		{`{"created_at": {"$gte": "2026-03-01T00:00:00Z"}}`, true},
		{`{"created_at": {"$lt": "2026-03-01T00:00:00Z"}}`, false},
		{`{"currency": {"$gt": "AAA", "$lt": "ZZZ"}}`, true},
		// type mismatches and missing fields fail ordering
		{`{"currency": {"$gt": 1}}`, false},
		{`{"count": {"$gt": "1"}}`, false},
		{`{"paid": {"$gt": 0}}`, false},
		{`{"note": {"$lt": 1}}`, false},
		{`{"missing": {"$gt": 0}}`, false},
		{`{"missing": {"$lte": "z"}}`, false},
		// $in / $nin
		{`{"currency": {"$in": ["USD", "EUR"]}}`, true},
		{`{"currency": {"$in": ["USD"]}}`, false},
		{`{"currency": {"$in": []}}`, false},
		{`{"count": {"$in": [1, 3.0]}}`, true},
		{`{"tags": {"$in": [["gift", "express"]]}}`, true},
		{`{"missing": {"$in": [null]}}`, false},
		{`{"note": {"$in": [null]}}`, true},
		{`{"currency": {"$nin": ["USD", "GBP"]}}`, true},
		{`{"currency": {"$nin": ["EUR"]}}`, false},
		{`{"missing": {"$nin": ["EUR"]}}`, true},
		// $exist
		{`{"note": {"$exist": true}}`, true},
		{`{"note": {"$exist": false}}`, false},
		{`{"missing": {"$exist": false}}`, true},
		{`{"missing": {"$exist": true}}`, false},
		{`{"customer.address.street": {"$exist": false}}`, true},
		{`{"items.1": {"$exist": true}}`, true},
		// several keys: AND
		{`{"currency": "EUR", "paid": true}`, true},
		{`{"currency": "EUR", "paid": false}`, false},
		// $and / $or / $not
		{`{"$and": [{"currency": "EUR"}, {"total": {"$gt": 100}}]}`, true},
		{`{"$and": [{"currency": "EUR"}, {"total": {"$gt": 200}}]}`, false},
		{`{"$or": [{"currency": "USD"}, {"total": {"$gt": 100}}]}`, true},
		{`{"$or": [{"currency": "USD"}, {"total": {"$gt": 200}}]}`, false},
		{`{"$not": {"currency": "USD"}}`, true},
		{`{"$not": {"currency": "EUR"}}`, false},
		{`{"$not": {"missing": {"$gt": 1}}}`, true},
		{`{"$or": [{"$and": [{"paid": true}, {"customer.vip": true}]}, {"$not": {"items.0.qty": {"$lt": 2}}}], "currency": "EUR"}`, true},
		// no condition at all
		{`{}`, true},
	}
	for _, tc := range tests {
		f := mustCompile(t, nil, filter.Conditions{Payload: json.RawMessage(tc.cond)})
		assert.Equal(t, tc.want, f.Match("order.created", []byte(payload)), tc.cond)
		assert.Equal(t, tc.want, f.MatchDecoded("order.created", []byte(payload)), tc.cond)
	}
}

func TestFilter_payload_documents(t *testing.T) {
	withCond := mustCompile(t, nil, filter.Conditions{Payload: json.RawMessage(`{"a": {"$exist": false}}`)})
	assert.True(t, withCond.NeedsPayload())
	assert.True(t, withCond.Match("x", []byte(`{}`)))
	assert.True(t, withCond.Match("x", []byte(` {"b": 1} `)))
	assert.True(t, withCond.Match("x", []byte(`[1, 2]`)), "not an object: a is missing")
	assert.True(t, withCond.Match("x", []byte(`"a"`)))
	assert.True(t, withCond.Match("x", []byte(`null`)))
	assert.False(t, withCond.Match("x", []byte(`{"a": 1}`)))
	assert.True(t, withCond.Match("x", nil), "no payload is null")
	assert.True(t, withCond.Match("x", []byte{}), "no payload is null")
	// invalid JSON never matches, even a condition a missing field passes
	for _, bad := range []string{" ", `{`, `{"b": }`, `{} {}`, `{"b": 1} x`, `nul`, "\xff"} {
		assert.False(t, withCond.Match("x", []byte(bad)), "%q", bad)
	}
	// without payload conditions the payload is not read
	for _, doc := range []string{`null`, ``, `{}`, " \n"} {
		f := mustCompile(t, nil, filter.Conditions{Payload: json.RawMessage(doc)})
		assert.False(t, f.NeedsPayload(), "%q", doc)
		assert.True(t, f.Match("x", []byte("not json")), "%q", doc)
	}
}

func TestFilter_name_and_payload_both_needed(t *testing.T) {
	f := mustCompile(t, []string{"order.*"}, filter.Conditions{Payload: json.RawMessage(`{"total": {"$gt": 10}}`)})
	assert.True(t, f.Match("order.created", []byte(`{"total": 11}`)))
	assert.False(t, f.Match("order.created", []byte(`{"total": 9}`)))
	assert.False(t, f.Match("cart.created", []byte(`{"total": 11}`)))
	assert.True(t, f.MatchName("order.created"))
	assert.False(t, f.MatchName("cart.created"))
}

func TestCompile_errors_name_fields_and_positions(t *testing.T) {
	_, err := filter.Compile(
		[]string{"order.created", "ord*.x", "", "order..x", strings.Repeat("a", 256)},
		filter.Conditions{
			Entities: filter.Selector{Include: []string{"order", "order.created"}, Exclude: []string{"us er"}},
			Events:   filter.Selector{Include: []string{"a.**"}, Exclude: []string{"ok", "x.**y"}},
			Payload: json.RawMessage(`{
				"$or": [{"total": 1}, {"total": {"$gt": true}}, 5],
				"$and": [],
				"$not": [],
				"$nope": 1,
				"items..sku": 1,
				"a": {"$in": 1, "$nin": "x", "$exist": "yes", "$lte": null, "$between": [1, 2]},
				"b": {"$eq": 1, "plain": 2},
				"c": {"$and": [{"x": 1}]}
			}`),
		})
	require.Error(t, err)
	want := []error{
		&field.Error{Field: "observes[1]", Rule: `segment 1 "ord*": a wildcard must be a whole segment`},
		&field.Error{Field: "observes[2]", Rule: "empty pattern"},
		&field.Error{Field: "observes[3]", Rule: "segment 2 is empty"},
		&field.Error{Field: "observes[4]", Rule: "256 bytes long; the limit is 255"},
		&field.Error{Field: "filter_conditions.entities.include[1]", Rule: "an entity is a single segment (the first of the event name)"},
		&field.Error{Field: "filter_conditions.entities.exclude[0]", Rule: `segment 1 "us er": character " " is not allowed (use A-Z a-z 0-9 _ : -)`},
		&field.Error{Field: "filter_conditions.events.exclude[1]", Rule: `segment 2 "**y": a wildcard must be a whole segment`},
		&field.Error{Field: "filter_conditions.payload.$and", Rule: "must not be empty"},
		&field.Error{Field: "filter_conditions.payload.$nope", Rule: "unknown operator (use a field path, $and, $or or $not)"},
		&field.Error{Field: "filter_conditions.payload.$not", Rule: "must be a condition object"},
		&field.Error{Field: "filter_conditions.payload.$or[1].total", Rule: "$gt needs a number or a string"},
		&field.Error{Field: "filter_conditions.payload.$or[2]", Rule: "must be a condition object"},
		&field.Error{Field: "filter_conditions.payload.a", Rule: `unknown operator "$between" (use $eq $neq $gt $gte $lt $lte $in $nin $exist)`},
		&field.Error{Field: "filter_conditions.payload.a", Rule: "$exist needs true or false"},
		&field.Error{Field: "filter_conditions.payload.a", Rule: "$in needs an array"},
		&field.Error{Field: "filter_conditions.payload.a", Rule: "$lte needs a number or a string"},
		&field.Error{Field: "filter_conditions.payload.a", Rule: "$nin needs an array"},
		&field.Error{Field: "filter_conditions.payload.b", Rule: `key "plain" mixed with operators (compare a whole object with $eq)`},
		&field.Error{Field: "filter_conditions.payload.c", Rule: `unknown operator "$and" (use $eq $neq $gt $gte $lt $lte $in $nin $exist)`},
		&field.Error{Field: "filter_conditions.payload.items..sku", Rule: "segment 2 of the field path is empty"},
	}
	assert.Equal(t, want, field.Errors(err))
}

func TestCompile_payload_document_errors(t *testing.T) {
	tests := []struct{ doc, field, rule string }{
		{`{"a": }`, "filter_conditions.payload", "invalid JSON at byte 7"},
		{`{"a": 1} {}`, "filter_conditions.payload", "invalid JSON"},
		{`[{"a": 1}]`, "filter_conditions.payload", "must be a condition object"},
		{`"a"`, "filter_conditions.payload", "must be a condition object"},
		{`{"$or": {"a": 1}}`, "filter_conditions.payload.$or", "must be an array of condition objects"},
		{`{"$or": []}`, "filter_conditions.payload.$or", "must not be empty"},
		{`{"$and": [{"$or": [{}, {"x": {"$gte": [1]}}]}]}`, "filter_conditions.payload.$and[0].$or[1].x", "$gte needs a number or a string"},
		{`{"$not": {"$not": {"a.b.c": {"$gt": {}}}}}`, "filter_conditions.payload.$not.$not.a.b.c", "$gt needs a number or a string"},
		{`{"": 1}`, "filter_conditions.payload.", "segment 1 of the field path is empty"},
	}
	for _, tc := range tests {
		_, err := filter.Compile(nil, filter.Conditions{Payload: json.RawMessage(tc.doc)})
		assert.Equal(t, []error{&field.Error{Field: tc.field, Rule: tc.rule}}, field.Errors(err), tc.doc)
	}
}

func TestConditions_json(t *testing.T) {
	var c filter.Conditions
	require.NoError(t, json.Unmarshal([]byte(`{
		"entities": {"include": ["order"]},
		"events": {"exclude": ["order.deleted"]},
		"payload": {"total": {"$gt": 10}}
	}`), &c))
	f := mustCompile(t, nil, c)
	assert.True(t, f.Match("order.created", []byte(`{"total": 11}`)))
	assert.False(t, f.Match("order.deleted", []byte(`{"total": 11}`)))
	assert.False(t, f.Match("cart.created", []byte(`{"total": 11}`)))
}

func TestFilter_concurrent_use(t *testing.T) {
	f := mustCompile(t, []string{"a.**.b.**.c", "order.*"}, filter.Conditions{Payload: json.RawMessage(`{"n": {"$gt": 1}}`)})
	done := make(chan bool)
	for g := 0; g < 4; g++ {
		go func() {
			ok := true
			for i := 0; i < 200; i++ {
				ok = ok && f.Match("a.x.b.y.c", []byte(`{"n": 2}`)) && !f.Match("a.x.b.y", []byte(`{"n": 2}`))
			}
			done <- ok
		}()
	}
	for g := 0; g < 4; g++ {
		assert.True(t, <-done)
	}
}

func TestValidJSONDepth(t *testing.T) {
	nest := func(n int) []byte {
		return []byte(strings.Repeat(`{"a":[`, n/2) + `1` + strings.Repeat(`]}`, n/2))
	}
	for _, tc := range []struct {
		data     []byte
		limit    int
		ok, deep bool
	}{
		{nest(100), 100, true, false},
		{nest(102), 100, false, true},
		{[]byte(`[[[]]]`), 3, true, false},
		{[]byte(`[[[[]]]]`), 3, false, true},
		{[]byte(`[[[}`), 3, false, false},
		{nest(10000), 1 << 20, true, false}, // encoding/json's limit holds above
		{nest(10002), 1 << 20, false, true},
	} {
		ok, deep := filter.ValidJSONDepth(tc.data, tc.limit)
		assert.Equal(t, tc.ok, ok, "%.20s (%d)", tc.data, tc.limit)
		assert.Equal(t, tc.deep, deep, "%.20s (%d)", tc.data, tc.limit)
	}
}
