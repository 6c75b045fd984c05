// Package field names what is wrong with a configuration or a request, field
// by field: an Error is one problem (the field's path and the rule it
// breaks), Problems collects every problem of a value so that Validate
// reports them all at once, Prefix re-roots them under a parent field, and
// DecodeStrict decodes JSON with errors that name the field. Every layer of
// sinkbus reports its problems this way; the package imports only the
// standard library.
//
// An Error never carries the field's value, so a secret cannot leak through
// it.
package field

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"
)

// Error is one validation problem: the field it concerns, as a path
// ("configuration.url", "observes[2]"), and the rule it breaks. It never
// carries the field's value, so a secret cannot leak through an error.
type Error struct {
	Field string // the path, relative to the value validated; empty for the value itself
	Rule  string // what is wrong, never quoting the value
}

// Error returns "field: rule", or the rule alone when no field is named.
func (e *Error) Error() string {
	if e.Field == "" {
		return e.Rule
	}
	return e.Field + ": " + e.Rule
}

// New returns the problem of field; rule may be a format for args.
func New(field, rule string, args ...any) *Error {
	if len(args) > 0 {
		rule = fmt.Sprintf(rule, args...)
	}
	return &Error{Field: field, Rule: rule}
}

// Problems collects validation problems; Err joins them.
type Problems []error

// Add records a problem with field. Rule may be a format.
func (p *Problems) Add(field, rule string, args ...any) {
	*p = append(*p, New(field, rule, args...))
}

// Merge records err's problems under prefix (see Prefix).
func (p *Problems) Merge(prefix string, err error) {
	if err != nil {
		*p = append(*p, Errors(Prefix(prefix, err))...)
	}
}

// Err returns nil when there is no problem, else every problem joined.
func (p Problems) Err() error {
	if len(p) == 0 {
		return nil
	}
	return errors.Join(p...)
}

// Prefix re-roots the field errors in err under prefix: "url" becomes
// "configuration.url", "[1]" becomes "addresses[1]". Other errors become
// field errors of prefix itself.
func Prefix(prefix string, err error) error {
	if err == nil || prefix == "" {
		return err
	}
	errs := Errors(err)
	out := make([]error, 0, len(errs))
	for _, e := range errs {
		fe := e.(*Error)
		field := prefix
		switch {
		case fe.Field == "":
		case strings.HasPrefix(fe.Field, "["):
			field += fe.Field
		default:
			field += "." + fe.Field
		}
		out = append(out, &Error{Field: field, Rule: fe.Rule})
	}
	return errors.Join(out...)
}

// Errors flattens err (errors.Join trees included) into *Error values; an
// error that is not a field error becomes one with no field.
func Errors(err error) []error {
	if err == nil {
		return nil
	}
	var fe *Error
	if errors.As(err, &fe) && fe == err {
		return []error{fe}
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, Errors(e)...)
		}
		return out
	}
	if errors.As(err, &fe) {
		return []error{fe}
	}
	return []error{&Error{Rule: err.Error()}}
}

// DecodeStrict unmarshals a JSON configuration into v, refusing unknown
// fields and trailing data. Its errors (*Error) name the field and never
// quote a value.
func DecodeStrict(data []byte, v any) error {
	if err := decodeStrict(data, v); err != nil {
		if fe, ok := err.(*Error); ok && fe.Field == "" {
			// A value's own UnmarshalJSON (a duration, a time) failed, and
			// encoding/json does not say where: find the member that fails
			// on its own.
			if me := memberError(data, v); me != nil {
				return me
			}
		}
		return err
	}
	return nil
}

func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonFieldError(err)
	}
	if dec.More() {
		return New("", "unexpected data after the JSON object")
	}
	return nil
}

// memberError decodes each member of the JSON object data alone into a new
// value of v's type and returns the first failure, named by the member;
// nil when none fails alone.
func memberError(data []byte, v any) error {
	t := reflect.TypeOf(v)
	if t == nil || t.Kind() != reflect.Pointer {
		return nil
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(data, &obj) != nil {
		return nil
	}
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		one, err := json.Marshal(map[string]json.RawMessage{k: obj[k]})
		if err != nil {
			continue
		}
		fresh := reflect.New(t.Elem()).Interface()
		dec := json.NewDecoder(bytes.NewReader(one))
		dec.DisallowUnknownFields()
		err = dec.Decode(fresh)
		if err == nil {
			continue
		}
		fe := jsonFieldError(err).(*Error)
		if fe.Field != "" {
			return fe
		}
		rule := err.Error()
		var pe *time.ParseError
		if errors.As(err, &pe) || strings.Contains(rule, "Time.UnmarshalJSON") {
			rule = `must be a time such as "2026-01-01T00:00:00Z"` // the parser's text quotes the value
		}
		return New(k, "%s", rule)
	}
	return nil
}

func jsonFieldError(err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		return New(te.Field, "%s", typeRule(te))
	case errors.As(err, &se):
		return New("", "invalid JSON at byte %d", se.Offset)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return New(name, "unknown field")
	}
	return New("", "invalid JSON: %s", err.Error())
}

// typeRule says what a value of the wrong type should have been, without
// quoting it: encoding/json's Value is "number 2.5" for a number.
func typeRule(te *json.UnmarshalTypeError) string {
	want := jsonKind(te.Type.Kind())
	got, _, _ := strings.Cut(te.Value, " ")
	if got == "number" && want != "a number" && strings.HasSuffix(want, "integer") {
		return "must be " + want // a fraction, or out of range
	}
	return "must be " + want + ", not " + article(got)
}

func jsonKind(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	}
	return "a number"
}

// article names a JSON kind as encoding/json's Value spells it.
func article(kind string) string {
	switch kind {
	case "array", "object":
		return "an " + kind
	case "bool":
		return "a boolean"
	case "":
		return "this"
	}
	return "a " + kind
}
