package bus

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/sinkbus/sinkbus/field"
	"github.com/sinkbus/sinkbus/internal/jsondoc"
	"github.com/sinkbus/sinkbus/sinks"
)

// unmaskConfig returns sent with every string that is the masked form of
// the stored value at the same JSON path replaced by that stored value. When
// the result is the stored configuration, it returns stored itself.
func unmaskConfig(reg *sinks.Registry, sent, stored sinks.Config) (sinks.Config, error) {
	doc, storedDoc, maskedDoc := jsondoc.Of(sent), jsondoc.Of(stored), jsondoc.Of(stored.Masked())
	out, changed := jsondoc.Strings("", doc, []any{storedDoc, maskedDoc}, func(_, s string, at []any) (string, bool) {
		st, ok := at[0].(string)
		if !ok || st == s {
			return "", false
		}
		mk, _ := at[1].(string)
		return st, s == mk || isMaskOf(s, st)
	})
	data, err := json.Marshal(out)
	if err != nil {
		return nil, err
	}
	if storedJSON, err := json.Marshal(storedDoc); err == nil && bytes.Equal(data, storedJSON) {
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
// did not match the stored value (see unmaskConfig). Stored as it is, the
// stars would become the credential.
func maskedValues(c, current sinks.Config) field.Problems {
	var p field.Problems
	jsondoc.Strings("configuration", jsondoc.Of(c), []any{jsondoc.Of(current)}, func(path, s string, at []any) (string, bool) {
		if sinks.IsMasked(s) && at[0] != s {
			p.Add(path, "is a masked value (****); send the real value")
		}
		return "", false
	})
	return p
}
