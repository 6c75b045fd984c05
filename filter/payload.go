package filter

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/sinkbus/sinkbus/field"
)

// cond is a compiled payload condition, evaluated on the values of the
// fields it names, found in the payload by scan.
type cond interface {
	eval(vals slotValues) bool
}

type allOf []cond

func (c allOf) eval(vals slotValues) bool {
	for _, x := range c {
		if !x.eval(vals) {
			return false
		}
	}
	return true
}

type anyOf []cond

func (c anyOf) eval(vals slotValues) bool {
	for _, x := range c {
		if x.eval(vals) {
			return true
		}
	}
	return false
}

type not struct{ c cond }

func (c not) eval(vals slotValues) bool { return !c.c.eval(vals) }

// pathCond tests the value at one path with every op.
type pathCond struct {
	at  *pathNode
	ops []op
	// decode is false when every op is $exist: presence is enough.
	decode bool
}

func (c pathCond) eval(vals slotValues) bool {
	var v any
	ok := vals[c.at.slot].raw != nil
	if ok && c.decode {
		v = vals.get(c.at.slot)
	}
	for _, o := range c.ops {
		if !o.test(v, ok) {
			return false
		}
	}
	return true
}

type opKind int

const (
	opEq opKind = iota
	opNeq
	opGt
	opGte
	opLt
	opLte
	opIn
	opNin
	opExist
)

var opKinds = map[string]opKind{
	"$eq": opEq, "$neq": opNeq,
	"$gt": opGt, "$gte": opGte, "$lt": opLt, "$lte": opLte,
	"$in": opIn, "$nin": opNin, "$exist": opExist,
}

type op struct {
	kind    opKind
	operand any   // $eq $neq $gt $gte $lt $lte
	list    []any // $in $nin
	exist   bool  // $exist
}

// test applies o to the field value v; ok is false when the field is missing.
func (o op) test(v any, ok bool) bool {
	switch o.kind {
	case opEq:
		return ok && equal(v, o.operand)
	case opNeq:
		return !ok || !equal(v, o.operand)
	case opIn:
		return ok && slices.ContainsFunc(o.list, func(x any) bool { return equal(v, x) })
	case opNin:
		return !ok || !slices.ContainsFunc(o.list, func(x any) bool { return equal(v, x) })
	case opExist:
		return ok == o.exist
	}
	if !ok {
		return false
	}
	c, comparable := compare(v, o.operand)
	if !comparable {
		return false
	}
	switch o.kind {
	case opGt:
		return c > 0
	case opGte:
		return c >= 0
	case opLt:
		return c < 0
	default: // opLte
		return c <= 0
	}
}

// equal is deep equality of decoded JSON values, numbers compared by value.
func equal(a, b any) bool {
	switch x := a.(type) {
	case json.Number:
		y, ok := b.(json.Number)
		return ok && compareNumbers(x, y) == 0
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, xv := range x {
			yv, ok := y[k]
			if !ok || !equal(xv, yv) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		return ok && slices.EqualFunc(x, y, equal)
	case string:
		y, ok := b.(string)
		return ok && x == y
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case nil:
		return b == nil
	}
	return false
}

// compare orders two numbers or two strings; other pairs are not comparable.
func compare(a, b any) (int, bool) {
	switch x := a.(type) {
	case json.Number:
		if y, ok := b.(json.Number); ok {
			return compareNumbers(x, y), true
		}
	case string:
		if y, ok := b.(string); ok {
			return strings.Compare(x, y), true
		}
	}
	return 0, false
}

// compareNumbers compares two JSON numbers: integers exactly, whatever
// their size, others as float64.
func compareNumbers(a, b json.Number) int {
	if c, ok := compareIntegers(string(a), string(b)); ok {
		return c
	}
	x, _ := strconv.ParseFloat(string(a), 64) // out of range: ±Inf or 0, which still orders right
	y, _ := strconv.ParseFloat(string(b), 64)
	return cmp.Compare(x, y)
}

// compareIntegers compares two JSON integers (no leading zeros) by sign,
// length, then digits; ok is false unless both are integers.
func compareIntegers(a, b string) (c int, ok bool) {
	negA, a, okA := integer(a)
	negB, b, okB := integer(b)
	if !okA || !okB {
		return 0, false
	}
	if negA != negB {
		if negA {
			return -1, true
		}
		return 1, true
	}
	c = cmp.Or(cmp.Compare(len(a), len(b)), strings.Compare(a, b))
	if negA {
		c = -c
	}
	return c, true
}

// integer splits a JSON integer into sign and digits; -0 is 0.
func integer(s string) (neg bool, digits string, ok bool) {
	digits = strings.TrimPrefix(s, "-")
	if digits == "" || strings.TrimLeft(digits, "0123456789") != "" {
		return false, "", false
	}
	return len(digits) < len(s) && digits != "0", digits, true
}

// decodeJSON decodes one JSON value, numbers as json.Number.
func decodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("unexpected data after the JSON value")
	}
	return v, nil
}

// conditions is a compiled payload condition document.
type conditions struct {
	root  cond
	paths *pathNode // every field path root names
	slots int
}

// match evaluates the conditions on payload; invalid JSON does not match.
func (c *conditions) match(payload []byte) bool {
	vals := make(slotValues, c.slots)
	return scan(payload, c.paths, vals) && c.root.eval(vals)
}

// compileConditions compiles a payload condition document; nil means no
// condition. Problems are named under at ("filter_conditions.payload").
func compileConditions(doc json.RawMessage, at string, p *field.Problems) *conditions {
	if len(bytes.TrimSpace(doc)) == 0 {
		return nil
	}
	v, err := decodeJSON(doc)
	if err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			p.Add(at, "invalid JSON at byte %d", se.Offset)
		} else {
			p.Add(at, "invalid JSON")
		}
		return nil
	}
	if v == nil {
		return nil
	}
	paths := &pathNode{}
	c := compileObject(v, at, paths, p)
	if a, ok := c.(allOf); ok && len(a) == 0 {
		return nil // {}: no condition
	}
	return &conditions{root: c, paths: paths, slots: paths.number(0)}
}

// compileObject compiles a condition object: every key must hold (AND).
func compileObject(v any, at string, paths *pathNode, p *field.Problems) cond {
	obj, ok := v.(map[string]any)
	if !ok {
		p.Add(at, "must be a condition object")
		return nil
	}
	var all allOf
	for _, k := range sortedKeys(obj) {
		val, kat := obj[k], at+"."+k
		switch {
		case k == "$and" || k == "$or":
			list, ok := val.([]any)
			if !ok {
				p.Add(kat, "must be an array of condition objects")
				continue
			}
			if len(list) == 0 {
				p.Add(kat, "must not be empty")
				continue
			}
			cs := make([]cond, len(list))
			for i, x := range list {
				cs[i] = compileObject(x, fmt.Sprintf("%s[%d]", kat, i), paths, p)
			}
			if k == "$and" {
				all = append(all, allOf(cs))
			} else {
				all = append(all, anyOf(cs))
			}
		case k == "$not":
			all = append(all, not{compileObject(val, kat, paths, p)})
		case strings.HasPrefix(k, "$"):
			p.Add(kat, "unknown operator (use a field path, $and, $or or $not)")
		default:
			if c, ok := compileField(k, val, kat, paths, p); ok {
				all = append(all, c)
			}
		}
	}
	return all
}

func compileField(path string, val any, at string, paths *pathNode, p *field.Problems) (pathCond, bool) {
	var f pathCond
	ok := true
	segs := strings.Split(path, ".")
	for i, seg := range segs {
		if seg == "" {
			p.Add(at, "segment %d of the field path is empty", i+1)
			ok = false
		}
	}
	if ok {
		f.at = paths.add(segs)
	}
	obj, isObj := val.(map[string]any)
	if !isObj || !hasOperator(obj) {
		f.ops, f.decode = []op{{kind: opEq, operand: val}}, true // a literal: implicit $eq
		return f, ok
	}
	for _, name := range sortedKeys(obj) {
		kind, known := opKinds[name]
		if !known {
			if strings.HasPrefix(name, "$") {
				p.Add(at, "unknown operator %q (use $eq $neq $gt $gte $lt $lte $in $nin $exist)", name)
			} else {
				p.Add(at, "key %q mixed with operators (compare a whole object with $eq)", name)
			}
			ok = false
			continue
		}
		o := op{kind: kind}
		operand := obj[name]
		switch kind {
		case opEq, opNeq:
			o.operand = operand
		case opGt, opGte, opLt, opLte:
			switch operand.(type) {
			case json.Number, string:
				o.operand = operand
			default:
				p.Add(at, "%s needs a number or a string", name)
				ok = false
			}
		case opIn, opNin:
			list, isList := operand.([]any)
			if !isList {
				p.Add(at, "%s needs an array", name)
				ok = false
			}
			o.list = list
		case opExist:
			b, isBool := operand.(bool)
			if !isBool {
				p.Add(at, "%s needs true or false", name)
				ok = false
			}
			o.exist = b
		}
		f.ops = append(f.ops, o)
		f.decode = f.decode || kind != opExist
	}
	return f, ok
}

func hasOperator(obj map[string]any) bool {
	for k := range obj {
		if strings.HasPrefix(k, "$") {
			return true
		}
	}
	return false
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
