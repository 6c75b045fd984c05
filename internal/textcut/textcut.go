// Package textcut shortens text the bus echoes or keeps (an id in an
// error, a request path, a failure reason) without cutting a character in
// two.
package textcut

import "unicode/utf8"

// Cut returns s when it is at most limit bytes, else its first limit
// bytes or fewer, ending on a whole character, and "…".
func Cut(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
