package filter

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/sinkbus/sinkbus/field"
)

// MaxNameLen is the longest event name or pattern, in bytes.
const MaxNameLen = 255

// ErrInvalidName is matched (errors.Is) by every error ValidateName returns.
var ErrInvalidName = errors.New("sinkbus: invalid event name")

// ErrInvalidPattern is matched (errors.Is) by every error ValidatePattern
// returns.
var ErrInvalidPattern = errors.New("sinkbus: invalid pattern")

// ValidateName reports whether name is a valid event name: dot-separated
// segments ("order.fulfilled"), each non-empty and made of A-Z a-z 0-9 _ : -,
// at most MaxNameLen bytes in all. The error matches ErrInvalidName and holds
// a *field.Error (with no field) saying what is wrong and where:
// `segment 2 "ful#filled": character "#" is not allowed (use A-Z a-z 0-9 _ : -)`.
func ValidateName(name string) error {
	if rule := checkName(name, false); rule != "" {
		return &invalidError{kind: ErrInvalidName, rule: field.New("", rule)}
	}
	return nil
}

// ValidatePattern reports whether pattern is a valid observes pattern: an
// event name whose segments may also be the wildcards "*" (exactly one
// segment) or "**" (any number of segments, none included). A wildcard must
// be a whole segment. The error matches ErrInvalidPattern and holds a
// *field.Error (with no field).
func ValidatePattern(pattern string) error {
	if rule := checkName(pattern, true); rule != "" {
		return &invalidError{kind: ErrInvalidPattern, rule: field.New("", rule)}
	}
	return nil
}

// invalidError is what ValidateName and ValidatePattern return: it matches
// kind, and unwraps to the one field error, so field.Prefix can name the
// field ("events[3].name: segment 2 is empty").
type invalidError struct {
	kind error
	rule *field.Error
}

func (e *invalidError) Error() string        { return e.kind.Error() + ": " + e.rule.Error() }
func (e *invalidError) Unwrap() error        { return e.rule }
func (e *invalidError) Is(target error) bool { return target == e.kind }

// checkName returns the rule s breaks, or "" when s is a valid name (or a
// valid pattern when wild is set).
func checkName(s string, wild bool) string {
	if s == "" {
		if wild {
			return "empty pattern"
		}
		return "empty event name"
	}
	if len(s) > MaxNameLen {
		return fmt.Sprintf("%d bytes long; the limit is %d", len(s), MaxNameLen)
	}
	for i, seg := range segments(s) {
		if seg == "" {
			return fmt.Sprintf("segment %d is empty", i+1)
		}
		if rule := checkSegment(seg, wild); rule != "" {
			return fmt.Sprintf("segment %d %q: %s", i+1, seg, rule)
		}
	}
	return ""
}

func checkSegment(seg string, wild bool) string {
	if wild && (seg == "*" || seg == "**") {
		return ""
	}
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		if nameByte(c) {
			continue
		}
		if c == '*' && wild {
			return "a wildcard must be a whole segment"
		}
		return fmt.Sprintf("character %q is not allowed (use A-Z a-z 0-9 _ : -)", charAt(seg, i))
	}
	return ""
}

func nameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '_' || c == ':' || c == '-'
}

// charAt returns the UTF-8 character starting at s[i], or the lone byte when
// s is not valid UTF-8 there.
func charAt(s string, i int) string {
	_, size := utf8.DecodeRuneInString(s[i:])
	return s[i : i+size]
}

// segments yields the dot-separated segments of s with their index, without
// allocating. The empty string has no segment.
func segments(s string) func(yield func(int, string) bool) {
	return func(yield func(int, string) bool) {
		if s == "" {
			return
		}
		for i := 0; ; i++ {
			dot := strings.IndexByte(s, '.')
			if dot < 0 {
				yield(i, s)
				return
			}
			if !yield(i, s[:dot]) {
				return
			}
			s = s[dot+1:]
		}
	}
}
