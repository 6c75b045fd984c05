package sinks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// FieldError is one validation problem: the field it concerns, as a path
// ("configuration.url", "observes[2]"), and the rule it breaks. It never
// carries the field's value, so a secret cannot leak through an error.
type FieldError struct {
	Field string
	Rule  string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Rule
	}
	return e.Field + ": " + e.Rule
}

// Field returns a *FieldError.
func Field(field, rule string, args ...any) *FieldError {
	if len(args) > 0 {
		rule = fmt.Sprintf(rule, args...)
	}
	return &FieldError{Field: field, Rule: rule}
}

// Problems collects validation problems; Err joins them.
type Problems []error

// Add records a problem with field. Rule may be a format.
func (p *Problems) Add(field, rule string, args ...any) {
	*p = append(*p, Field(field, rule, args...))
}

// Merge records err's problems under prefix (see Prefix).
func (p *Problems) Merge(prefix string, err error) {
	if err != nil {
		*p = append(*p, FieldErrors(Prefix(prefix, err))...)
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
	errs := FieldErrors(err)
	out := make([]error, 0, len(errs))
	for _, e := range errs {
		fe := e.(*FieldError)
		field := prefix
		switch {
		case fe.Field == "":
		case strings.HasPrefix(fe.Field, "["):
			field += fe.Field
		default:
			field += "." + fe.Field
		}
		out = append(out, &FieldError{Field: field, Rule: fe.Rule})
	}
	return errors.Join(out...)
}

// FieldErrors flattens err (errors.Join trees included) into *FieldError
// values; an error that is not a field error becomes one with no field.
func FieldErrors(err error) []error {
	if err == nil {
		return nil
	}
	var fe *FieldError
	if errors.As(err, &fe) && fe == err {
		return []error{fe}
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, FieldErrors(e)...)
		}
		return out
	}
	if errors.As(err, &fe) {
		return []error{fe}
	}
	return []error{&FieldError{Rule: err.Error()}}
}

// DecodeStrict unmarshals a JSON configuration into v, refusing unknown
// fields. Its errors name the field and never quote a value.
func DecodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonFieldError(err)
	}
	if dec.More() {
		return Field("", "unexpected data after the JSON object")
	}
	return nil
}

func jsonFieldError(err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		return Field(te.Field, "must be %s, not %s", jsonKind(te.Type.Kind().String()), te.Value)
	case errors.As(err, &se):
		return Field("", "invalid JSON at byte %d", se.Offset)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return Field(name, "unknown field")
	}
	return Field("", "invalid JSON: %s", err.Error())
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "slice", "array":
		return "an array"
	case "map", "struct":
		return "an object"
	case "bool":
		return "a boolean"
	}
	return "a number"
}
