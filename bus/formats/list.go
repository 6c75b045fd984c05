package formats

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/field"
)

// DecodeList reads the integrations of a JSON array, each in any of the
// three shapes (as Decode reads one), and validates them as Create would in
// m: what an application declares in a file for bus.Integrations.Reconcile.
// Every problem of every element is reported at once
// (errors.Is(err, bus.ErrInvalid)), named "[i]." and then as the element
// wrote it ("[1].callback_url" in a NewStore element).
//
// Files are JSON only: sinkbus reads no YAML, whose implicit types (an id
// or a secret of digits becomes a number, "no" a boolean) would change
// values without a word; a YAML file converts to JSON before (yq -o json).
func DecodeList(m *bus.Integrations, body []byte) ([]bus.Integration, error) {
	var raw []json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&raw); err != nil || dec.More() || raw == nil {
		return nil, invalid("", "must be a JSON array of integrations")
	}
	out := make([]bus.Integration, 0, len(raw))
	var p field.Problems
	for i, r := range raw {
		at := fmt.Sprintf("[%d]", i)
		in, _, names, err := decode(m, r)
		if err == nil {
			err = renameErr(m.Validate(in), names)
		}
		var ep field.Problems
		for _, fe := range problemsOf(err) {
			ep = append(ep, fe)
		}
		p.Merge(at, ep.Err())
		out = append(out, in)
	}
	if err := p.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", bus.ErrInvalid, err)
	}
	return out, nil
}
