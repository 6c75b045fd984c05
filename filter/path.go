package filter

import (
	"fmt"
	"strings"
)

// Path reads one field of a JSON payload, such as "order.id" (a numeric
// segment also indexes an array), with the same single pass over the payload
// as payload conditions: nothing else in it is decoded. Integrations use it
// for their order keys.
type Path struct {
	root *pathNode
}

// NewPath compiles a dot-separated field path; every segment must be
// non-empty.
func NewPath(path string) (*Path, error) {
	segs := strings.Split(path, ".")
	for i, seg := range segs {
		if seg == "" {
			return nil, fmt.Errorf("segment %d of the field path %q is empty", i+1, path)
		}
	}
	root := &pathNode{}
	root.add(segs)
	root.number(0)
	return &Path{root: root}, nil
}

// String returns the field's value in payload as a key: a string's text,
// another value's JSON text (a number as written, so that large ids keep
// every digit), and "" when the field is missing or null, or the payload is
// not valid JSON.
func (p *Path) String(payload []byte) string {
	var vals [1]slotValue
	if !scan(payload, p.root, vals[:]) || vals[0].raw == nil {
		return ""
	}
	switch raw := vals[0].raw; raw[0] {
	case 'n':
		return ""
	case '"':
		return decodeString(raw)
	default:
		return string(raw)
	}
}
