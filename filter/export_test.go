package filter

// MatchDecoded is Match done the slow, obvious way: decode the whole payload
// with encoding/json, then walk each field path. Tests check that Match,
// which scans the payload once for the paths it needs, agrees with it.
func (f *Filter) MatchDecoded(name string, payload []byte) bool {
	if !f.MatchName(name) {
		return false
	}
	if !f.NeedsPayload() {
		return true
	}
	if len(payload) == 0 {
		payload = null
	}
	doc, err := decodeJSON(payload)
	if err != nil {
		return false
	}
	vals := make(slotValues, f.payload.slots)
	var walk func(n *pathNode, v any)
	walk = func(n *pathNode, v any) {
		if n.end {
			vals[n.slot] = slotValue{raw: []byte{}, v: v, decoded: true}
		}
		for key, c := range n.keys {
			switch x := v.(type) {
			case map[string]any:
				if cv, ok := x[key]; ok {
					walk(c, cv)
				}
			case []any:
				for i, e := range n.elems {
					if e == c && i < len(x) {
						walk(c, x[i])
					}
				}
			}
		}
	}
	walk(f.payload.paths, doc)
	return f.payload.root.eval(vals)
}
