package bus

import (
	"bytes"
	"encoding/json"

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
// masked) and puts the stored string back wherever sent holds a masked one.
func unmask(sent, stored, masked any) (any, bool) {
	switch s := sent.(type) {
	case string:
		st, ok := stored.(string)
		if !ok || st == s {
			return s, false
		}
		if mk, _ := masked.(string); sinks.IsMasked(s) || s == mk {
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
