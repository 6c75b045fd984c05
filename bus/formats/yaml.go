package formats

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"go.yaml.in/yaml/v3"

	"github.com/sinkbus/sinkbus/bus"
)

// DecodeListYAML reads the integrations of a YAML sequence as DecodeList
// reads a JSON array: the same shapes, the same validation, problems named
// the same way.
//
// YAML's implicit types are not let to change a value silently: a plain
// scalar becomes a JSON number only when it is written as one (0x1F, 0o17,
// 1_000, .inf are refused: quote them or write them in decimal), true and
// false are the only booleans (yes, no, on, off stay strings), and a number
// where the integration wants a string (an id of digits) is an error naming
// the field, as it is in JSON. Aliases are refused: a declaration spells
// out what it declares, and expanding them is how small files grow huge.
func DecodeListYAML(m *bus.Integrations, body []byte) ([]bus.Integration, error) {
	js, err := yamlToJSON(body)
	if err != nil {
		return nil, err
	}
	return DecodeList(m, js)
}

// yamlToJSON converts one YAML document to JSON, scalars kept as written.
func yamlToJSON(body []byte) ([]byte, error) {
	dec := yaml.NewDecoder(bytes.NewReader(body))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, invalid("", "must be a YAML sequence of integrations")
		}
		return nil, invalid("", "must be YAML: %v", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, invalid("", "must be one YAML document")
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.SequenceNode {
		return nil, invalid("", "must be a YAML sequence of integrations")
	}
	var buf bytes.Buffer
	if err := writeJSON(&buf, root, ""); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeJSON writes n as JSON; at names it in errors ("[1].observes[0]").
func writeJSON(buf *bytes.Buffer, n *yaml.Node, at string) error {
	switch n.Kind {
	case yaml.SequenceNode:
		buf.WriteByte('[')
		for i, c := range n.Content {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeJSON(buf, c, fmt.Sprintf("%s[%d]", at, i)); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	case yaml.MappingNode:
		buf.WriteByte('{')
		seen := make(map[string]bool, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				return invalid(at, "keys must be plain strings (line %d)", k.Line)
			}
			name := k.Value
			if at != "" {
				name = at + "." + k.Value
			}
			if k.Tag == "!!merge" {
				return invalid(name, "merge keys are not supported: spell the fields out (line %d)", k.Line)
			}
			if seen[k.Value] {
				return invalid(name, "appears twice (line %d)", k.Line)
			}
			seen[k.Value] = true
			if i > 0 {
				buf.WriteByte(',')
			}
			key, _ := json.Marshal(k.Value)
			buf.Write(key)
			buf.WriteByte(':')
			if err := writeJSON(buf, v, name); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
	case yaml.ScalarNode:
		return writeScalar(buf, n, at)
	case yaml.AliasNode:
		return invalid(at, "aliases are not supported: spell the value out (line %d)", n.Line)
	default:
		return invalid(at, "is not a YAML value sinkbus reads (line %d)", n.Line)
	}
	return nil
}

// writeScalar writes a scalar as its tag resolves it, refusing the
// spellings JSON has no equal for.
func writeScalar(buf *bytes.Buffer, n *yaml.Node, at string) error {
	switch n.ShortTag() {
	case "!!str", "!!timestamp": // a timestamp stays its text: Go parses RFC 3339 itself
		s, _ := json.Marshal(n.Value)
		buf.Write(s)
	case "!!int", "!!float":
		if !json.Valid([]byte(n.Value)) {
			return invalid(at, "%q is not a decimal number: write it in decimal, or in quotes for a string (line %d)", n.Value, n.Line)
		}
		buf.WriteString(n.Value)
	case "!!bool":
		if n.Value != "true" && n.Value != "false" {
			return invalid(at, "%q: booleans are true or false; quote it for a string (line %d)", n.Value, n.Line)
		}
		buf.WriteString(n.Value)
	case "!!null":
		buf.WriteString("null")
	default:
		return invalid(at, "tag %s is not supported (line %d)", n.Tag, n.Line)
	}
	return nil
}
