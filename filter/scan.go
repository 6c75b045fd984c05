package filter

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// pathNode is a trie of the field paths a condition document names, so one
// pass over a payload finds every value the conditions read.
type pathNode struct {
	keys  map[string]*pathNode // object members
	elems map[int]*pathNode    // array elements: the keys that are indexes
	end   bool                 // a path ends here
	slot  int                  // its value's index in slotValues, when end
	// Slots lo..hi-1 belong to this subtree (they are numbered depth
	// first): a repeated object key clears them, as the last member wins.
	lo, hi int
}

func (n *pathNode) add(segs []string) *pathNode {
	for _, seg := range segs {
		c := n.keys[seg]
		if c == nil {
			if n.keys == nil {
				n.keys = make(map[string]*pathNode)
			}
			c = &pathNode{}
			n.keys[seg] = c
			if i, err := strconv.Atoi(seg); err == nil && i >= 0 && strconv.Itoa(i) == seg {
				if n.elems == nil {
					n.elems = make(map[int]*pathNode)
				}
				n.elems[i] = c
			}
		}
		n = c
	}
	n.end = true
	return n
}

// number gives a slot to every node where a path ends, from next on, and
// returns the next free slot.
func (n *pathNode) number(next int) int {
	n.lo = next
	if n.end {
		n.slot = next
		next++
	}
	for _, c := range n.keys {
		next = c.number(next)
	}
	n.hi = next
	return next
}

// slotValue is the value of one field path in a payload.
type slotValue struct {
	raw     []byte // its JSON text; nil when the field is missing
	v       any
	decoded bool
}

type slotValues []slotValue

// get returns the value of the present field in slot, decoded on first use.
func (vals slotValues) get(slot int) any {
	s := &vals[slot]
	if !s.decoded {
		s.v, s.decoded = decodeValue(s.raw), true
	}
	return s.v
}

// decodeValue decodes valid JSON as encoding/json does into an any, with
// numbers as json.Number.
func decodeValue(raw []byte) any {
	switch raw[0] {
	case 't':
		return true
	case 'f':
		return false
	case 'n':
		return nil
	case '"':
		return decodeString(raw)
	case '{', '[':
		v, _ := decodeJSON(raw)
		return v
	}
	return json.Number(raw)
}

// decodeString decodes a valid JSON string; invalid UTF-8 becomes U+FFFD.
func decodeString(raw []byte) string {
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner)
	}
	var s string
	_ = json.Unmarshal(raw, &s)
	return s
}

// maxDepth is how deep arrays and objects may nest, as in encoding/json.
const maxDepth = 10000

// scanner validates one JSON document and, on the way, stores in vals the
// text of every value whose path is in the path trie. It allocates nothing
// unless a key it looks up holds escapes or non-ASCII characters.
type scanner struct {
	data  []byte
	pos   int
	depth int
	limit int  // the deepest nesting accepted
	deep  bool // the scan failed for nesting deeper than limit
	vals  slotValues
}

// scan reports whether data is one valid JSON value (what json.Valid says)
// and fills vals with the values of the paths under root.
func scan(data []byte, root *pathNode, vals slotValues) bool {
	s := scanner{data: data, vals: vals, limit: maxDepth}
	return s.all(root)
}

// all scans the whole of s.data as one value.
func (s *scanner) all(root *pathNode) bool {
	if !s.value(root) {
		return false
	}
	s.space()
	return s.pos == len(s.data)
}

func (s *scanner) space() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// next skips space and reports whether the next byte is c, consuming it.
func (s *scanner) next(c byte) bool {
	s.space()
	if s.pos < len(s.data) && s.data[s.pos] == c {
		s.pos++
		return true
	}
	return false
}

// value scans one value; n is its node in the path trie, or nil.
func (s *scanner) value(n *pathNode) bool {
	s.space()
	if s.pos >= len(s.data) {
		return false
	}
	start := s.pos
	var ok bool
	switch s.data[s.pos] {
	case '{':
		ok = s.object(n)
	case '[':
		ok = s.array(n)
	case '"':
		ok, _ = s.string()
	case 't':
		ok = s.literal("true")
	case 'f':
		ok = s.literal("false")
	case 'n':
		ok = s.literal("null")
	default:
		ok = s.number()
	}
	if ok && n != nil && n.end {
		s.vals[n.slot] = slotValue{raw: s.data[start:s.pos]}
	}
	return ok
}

func (s *scanner) object(n *pathNode) bool {
	if s.depth++; s.depth > s.limit {
		s.deep = true
		return false
	}
	s.pos++ // {
	if s.next('}') {
		s.depth--
		return true
	}
	for {
		s.space()
		start := s.pos
		if s.pos >= len(s.data) || s.data[s.pos] != '"' {
			return false
		}
		ok, plain := s.string()
		if !ok {
			return false
		}
		var child *pathNode
		if n != nil && n.keys != nil {
			key := s.data[start+1 : s.pos-1]
			if plain {
				child = n.keys[string(key)]
			} else {
				child = n.keys[decodeString(s.data[start:s.pos])]
			}
			if child != nil {
				clear(s.vals[child.lo:child.hi])
			}
		}
		if !s.next(':') || !s.value(child) {
			return false
		}
		if s.next(',') {
			continue
		}
		if s.next('}') {
			s.depth--
			return true
		}
		return false
	}
}

func (s *scanner) array(n *pathNode) bool {
	if s.depth++; s.depth > s.limit {
		s.deep = true
		return false
	}
	s.pos++ // [
	if s.next(']') {
		s.depth--
		return true
	}
	for i := 0; ; i++ {
		var child *pathNode
		if n != nil && n.elems != nil {
			child = n.elems[i]
		}
		if !s.value(child) {
			return false
		}
		if s.next(',') {
			continue
		}
		if s.next(']') {
			s.depth--
			return true
		}
		return false
	}
}

// string scans a string; plain reports that it has neither escapes nor
// bytes outside ASCII, so its text is its value.
// plainByte marks the bytes a string may hold as they are: printable ASCII
// but the quote and the backslash. A table lookup per byte lets the common
// run of plain characters go by in a tight loop.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func (s *scanner) string() (ok, plain bool) {
	d, plain := s.data, true
	for i := s.pos + 1; i < len(d); {
		for i+4 <= len(d) && plainByte[d[i]] && plainByte[d[i+1]] && plainByte[d[i+2]] && plainByte[d[i+3]] {
			i += 4
		}
		for i < len(d) && plainByte[d[i]] {
			i++
		}
		if i >= len(d) {
			break
		}
		switch c := d[i]; {
		case c == '"':
			s.pos = i + 1
			return true, plain
		case c == '\\':
			plain = false
			if i+1 >= len(d) {
				return false, false
			}
			switch d[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(d) {
					return false, false
				}
				for _, h := range d[i+2 : i+6] {
					if !isHex(h) {
						return false, false
					}
				}
				i += 6
			default:
				return false, false
			}
		case c < 0x20:
			return false, false
		case c >= utf8.RuneSelf:
			plain = false
			i++
		default:
			i++
		}
	}
	return false, false
}

func (s *scanner) literal(lit string) bool {
	if len(s.data)-s.pos < len(lit) || string(s.data[s.pos:s.pos+len(lit)]) != lit {
		return false
	}
	s.pos += len(lit)
	return true
}

// number scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() bool {
	d, i := s.data, s.pos
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && isDigit(d[i]):
		i = digits(d, i)
	default:
		return false
	}
	if i < len(d) && d[i] == '.' {
		if i++; i >= len(d) || !isDigit(d[i]) {
			return false
		}
		i = digits(d, i)
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		if i++; i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || !isDigit(d[i]) {
			return false
		}
		i = digits(d, i)
	}
	s.pos = i
	return true
}

func digits(d []byte, i int) int {
	for i < len(d) && isDigit(d[i]) {
		i++
	}
	return i
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isHex(c byte) bool {
	return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// ValidJSON reports whether data is one valid JSON document, exactly as
// encoding/json.Valid does, at about twice its speed: the bus checks every
// published payload with it.
func ValidJSON(data []byte) bool { return scan(data, nil, nil) }

// ValidJSONDepth reports whether data is one valid JSON value whose arrays
// and objects nest at most limit deep (at most encoding/json's 10000);
// deep reports that data failed for nesting deeper.
func ValidJSONDepth(data []byte, limit int) (ok, deep bool) {
	s := scanner{data: data, limit: min(limit, maxDepth)}
	ok = s.all(nil)
	return ok, s.deep
}
