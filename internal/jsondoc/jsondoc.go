// Package jsondoc walks configurations in their JSON form, string by
// string, beside other documents of the same shape: how the bus finds the
// secrets a configuration masks, puts stored secrets back where a masked
// one was sent, and finds masks sent as values.
package jsondoc

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"strconv"
)

// Of returns v's JSON form decoded (numbers as json.Number, so that they
// encode back as they were), or nil when v is nil or has none.
func Of(v any) any {
	if v == nil {
		return nil
	}
	data, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc any
	if dec.Decode(&doc) != nil {
		return nil
	}
	return doc
}

// Strings calls fn with every string of doc, its path below root
// ("root.headers.X-Api-Key", "root.addresses[1]"; object members in sorted
// order) and the values at the same place in others (nil where they have
// none). A string fn returns with true replaces the one in doc: objects and
// arrays are changed in place. It returns doc, and whether anything was
// replaced.
func Strings(root string, doc any, others []any, fn func(path, s string, others []any) (string, bool)) (any, bool) {
	switch x := doc.(type) {
	case string:
		if s, ok := fn(root, x, others); ok {
			return s, true
		}
	case map[string]any:
		changed := false
		for _, k := range slices.Sorted(maps.Keys(x)) {
			at := make([]any, len(others))
			for i, o := range others {
				m, _ := o.(map[string]any)
				at[i] = m[k]
			}
			if v, c := Strings(root+"."+k, x[k], at, fn); c {
				x[k], changed = v, true
			}
		}
		return x, changed
	case []any:
		changed := false
		for j := range x {
			at := make([]any, len(others))
			for i, o := range others {
				if l, _ := o.([]any); j < len(l) {
					at[i] = l[j]
				}
			}
			if v, c := Strings(root+"["+strconv.Itoa(j)+"]", x[j], at, fn); c {
				x[j], changed = v, true
			}
		}
		return x, changed
	}
	return doc, false
}
