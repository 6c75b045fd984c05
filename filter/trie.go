package filter

import (
	"slices"
	"strings"
	"sync"
)

// trie holds a set of valid patterns, one segment per edge, so a name is
// matched against all of them in one walk over its segments.
type trie struct {
	root node
	// all is set when a pattern matches every name ("*" or "**").
	all bool
	// loops counts the "**" nodes; each has an id below it.
	loops int
	// nested is set when some pattern holds two "**" segments or more:
	// without a memo its walk could try exponentially many splits.
	nested bool
	memos  sync.Pool // of *memo, when nested
	// literal holds the patterns when none has a wildcard and there are
	// few: an integration observing a name or two, the common case, is
	// then matched by comparing strings, with no segment split or map
	// lookup (5 ns against 21, BenchmarkMatchName_literal). With an
	// integration per name, every one judges every event.
	literal []string
}

// maxLiteral is the most wildcard-free patterns matched by comparison: it
// bounds the comparisons per name, where the walk's cost does not grow
// with the patterns.
const maxLiteral = 4

type node struct {
	children map[string]*node // exact segments
	star     *node            // "*": exactly one segment
	dstar    *node            // "**": a loop node
	end      bool             // a pattern ends here
	loop     bool             // this node consumes any number of segments
	id       int              // among loop nodes, for the memo
}

// newTrie compiles patterns, which must be valid (see ValidatePattern).
func newTrie(patterns []string) *trie {
	t := &trie{}
	for _, p := range patterns {
		t.add(p)
	}
	t.all = t.root.dstar != nil && t.root.dstar.end
	if len(patterns) <= maxLiteral && !slices.ContainsFunc(patterns, hasWildcard) {
		t.literal = slices.Clone(patterns) // the caller may reuse its slice
	}
	return t
}

// hasWildcard reports whether a valid pattern has a "*" or "**" segment.
func hasWildcard(pattern string) bool {
	return strings.Contains(pattern, "*")
}

func (t *trie) add(pattern string) {
	if pattern == "*" {
		pattern = "**" // "*" alone means every event
	}
	n, loops := &t.root, 0
	for _, seg := range segments(pattern) {
		switch seg {
		case "**":
			if n.loop { // "**.**" is "**"
				continue
			}
			if n.dstar == nil {
				n.dstar = &node{loop: true, id: t.loops}
				t.loops++
			}
			n = n.dstar
			if loops++; loops > 1 {
				t.nested = true
			}
		case "*":
			if n.star == nil {
				n.star = &node{}
			}
			n = n.star
		default:
			c := n.children[seg]
			if c == nil {
				if n.children == nil {
					n.children = make(map[string]*node)
				}
				c = &node{}
				n.children[seg] = c
			}
			n = c
		}
	}
	n.end = true
}

// match reports whether name matches one of the patterns. It allocates
// nothing unless patterns nest "**" (then a pooled memo). A name longer than
// MaxNameLen, which no valid event has, matches only "*" or "**": this
// bounds the memo.
func (t *trie) match(name string) bool {
	if t.all {
		return true
	}
	if t.literal != nil {
		return slices.Contains(t.literal, name)
	}
	if len(name) > MaxNameLen {
		return false
	}
	pos := 0
	if name == "" {
		pos = 1 // no segment at all
	}
	if !t.nested {
		return t.walk(&t.root, name, pos, nil)
	}
	m, _ := t.memos.Get().(*memo)
	if m == nil {
		m = new(memo)
	}
	m.reset(t.loops, len(name)+2)
	ok := t.walk(&t.root, name, pos, m)
	t.memos.Put(m)
	return ok
}

// walk matches name[pos:] from n. pos is the start of the next segment; past
// len(name) no segment is left.
func (t *trie) walk(n *node, name string, pos int, m *memo) bool {
	for pos <= len(name) {
		end := strings.IndexByte(name[pos:], '.')
		if end < 0 {
			end = len(name)
		} else {
			end += pos
		}
		if n.dstar != nil && t.loop(n.dstar, name, pos, m) {
			return true
		}
		if n.star != nil && t.walk(n.star, name, end+1, m) {
			return true
		}
		if n = n.children[name[pos:end]]; n == nil {
			return false
		}
		pos = end + 1
	}
	return n.end || n.dstar != nil && n.dstar.end
}

// loop lets the "**" node d swallow zero, one, two... segments from pos,
// trying the rest of each pattern after every split.
func (t *trie) loop(d *node, name string, pos int, m *memo) bool {
	for {
		if (m == nil || m.first(d.id, pos)) && t.walk(d, name, pos, m) {
			return true
		}
		if pos > len(name) {
			return false
		}
		if dot := strings.IndexByte(name[pos:], '.'); dot >= 0 {
			pos += dot + 1
		} else {
			pos = len(name) + 1
		}
	}
}

// memo remembers which (loop node, position) pairs were tried: a walk from
// one either matched (and the search stopped) or failed, so a second try
// is wasted.
type memo struct {
	bits  []uint64
	width int
}

func (m *memo) reset(loops, width int) {
	n := (loops*width + 63) / 64
	if cap(m.bits) < n {
		m.bits = make([]uint64, n)
	} else {
		m.bits = m.bits[:n]
		clear(m.bits)
	}
	m.width = width
}

// first marks (id, pos) and reports whether it was unmarked.
func (m *memo) first(id, pos int) bool {
	i := id*m.width + pos
	w, b := i/64, uint64(1)<<(i%64)
	if m.bits[w]&b != 0 {
		return false
	}
	m.bits[w] |= b
	return true
}
