package bus

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/sinkbus/sinkbus/field"
	"github.com/sinkbus/sinkbus/sinks"
)

// unmaskConfig returns sent with every string that is the masked form of
// the stored value at the same JSON path replaced by that stored value. When
// the result is the stored configuration, it returns stored itself.
func unmaskConfig(reg *sinks.Registry, sent, stored sinks.Config) (sinks.Config, error) {
	var docs [3]any
	for i, c := range []sinks.Config{sent, stored, stored.Masked()} {
		data, err := json.Marshal(c)
		if err != nil {
			return nil, err
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if err := dec.Decode(&docs[i]); err != nil {
			return nil, err
		}
	}
	out, changed := unmask(docs[0], docs[1], docs[2])
	data, err := json.Marshal(out)
	if err != nil {
		return nil, err
	}
	if storedJSON, err := json.Marshal(docs[1]); err == nil && bytes.Equal(data, storedJSON) {
		return stored, nil
	}
	if !changed {
		return sent, nil
	}
	c, err := reg.Decode(sent.Type(), data)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// unmask walks sent beside stored and masked (the same document, secrets
// masked) and puts the stored string back wherever sent holds a mask of it.
func unmask(sent, stored, masked any) (any, bool) {
	switch s := sent.(type) {
	case string:
		st, ok := stored.(string)
		if !ok || st == s {
			return s, false
		}
		if mk, _ := masked.(string); s == mk || isMaskOf(s, st) {
			return st, true
		}
	case map[string]any:
		st, _ := stored.(map[string]any)
		mk, _ := masked.(map[string]any)
		changed := false
		for k, v := range s {
			if nv, c := unmask(v, st[k], mk[k]); c {
				s[k], changed = nv, true
			}
		}
		return s, changed
	case []any:
		st, _ := stored.([]any)
		mk, _ := masked.([]any)
		changed := false
		for i, v := range s {
			var sv, mv any
			if i < len(st) {
				sv = st[i]
			}
			if i < len(mk) {
				mv = mk[i]
			}
			if nv, c := unmask(v, sv, mv); c {
				s[i], changed = nv, true
			}
		}
		return s, changed
	}
	return sent, false
}

// isMaskOf reports whether s is a mask of secret: stars (four or more)
// followed by nothing or by the end of secret, as sinks.Mask and Elastic
// Path's "****************PSYQ" show it.
func isMaskOf(s, secret string) bool {
	if !sinks.IsMasked(s) {
		return false
	}
	return strings.HasSuffix(secret, strings.TrimLeft(s, "*"))
}

// maskedValues reports every string of c's configuration that is a mask
// (sinks.IsMasked), unless current (the configuration c replaces, nil on
// creation) holds the same string at the same place: on creation there is
// no stored secret for a mask to stand for, and on update it is one that
// did not match the stored value (see unmask). Stored as it is, the stars
// would become the credential.
func maskedValues(c, current sinks.Config) field.Problems {
	doc, cur := jsonDoc(c), jsonDoc(current)
	var p field.Problems
	var walk func(path string, v, was any)
	walk = func(path string, v, was any) {
		switch x := v.(type) {
		case string:
			if sinks.IsMasked(x) && was != x {
				p.Add(path, "is a masked value (****); send the real value")
			}
		case map[string]any:
			w, _ := was.(map[string]any)
			for _, k := range slices.Sorted(maps.Keys(x)) {
				walk(path+"."+k, x[k], w[k])
			}
		case []any:
			w, _ := was.([]any)
			for i, e := range x {
				var we any
				if i < len(w) {
					we = w[i]
				}
				walk(path+"["+strconv.Itoa(i)+"]", e, we)
			}
		}
	}
	walk("configuration", doc, cur)
	return p
}

// jsonDoc is c's JSON form decoded, nil when there is none.
func jsonDoc(c sinks.Config) any {
	if c == nil {
		return nil
	}
	data, err := json.Marshal(c)
	if err != nil {
		return nil
	}
	var doc any
	if json.Unmarshal(data, &doc) != nil {
		return nil
	}
	return doc
}
