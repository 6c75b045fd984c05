// Package filter decides whether an integration receives an event: by its
// name (observes patterns, entity and event include / exclude lists) and by
// its JSON payload (Mongo-style conditions, as Hookdeck Outpost and Convoy
// offer).
//
// Event names are dot-separated segments ("order.fulfilled"). A pattern is a
// name whose segments may be "*" (exactly one segment) or "**" (any number
// of segments, none included); "*" or "**" alone matches every event.
// Patterns are compiled once into a trie, so matching a name costs about
// the same against ten thousand patterns as against ten.
//
// A payload condition is a JSON object whose keys are field paths
// ("customer.address.country", "items.0.sku") or the logical operators
// $and, $or (arrays of condition objects) and $not (one condition object).
// A field's value is a literal (deep equality) or an object of operators:
// $eq $neq $gt $gte $lt $lte $in $nin $exist. Several keys in one object
// must all hold. A missing field fails every operator except $neq, $nin and
// {"$exist": false}.
//
//	{"total": {"$gte": 100}, "$or": [{"currency": "EUR"}, {"customer.vip": true}]}
package filter

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/sinkbus/sinkbus/field"
)

// Selector is an include / exclude list (NewStore's entity and event
// filters). Entries are patterns, with the syntax of observes. An empty
// Include selects everything; an empty Exclude removes nothing.
type Selector struct {
	Include []string `json:"include,omitempty"`
	Exclude []string `json:"exclude,omitempty"`
}

// Conditions is an integration's filter_conditions. The zero value lets
// every event through.
type Conditions struct {
	// Entities selects by entity, the first segment of the event name
	// ("order" in "order.fulfilled"). Its patterns are one segment long.
	Entities Selector `json:"entities,omitempty"`
	// Events selects by event name.
	Events Selector `json:"events,omitempty"`
	// Payload is a condition document on the event's JSON payload (see the
	// package documentation). Empty, null or {} means no condition.
	Payload json.RawMessage `json:"payload,omitempty"`
}

// Filter is a compiled set of observes patterns and Conditions. It is
// immutable and safe for concurrent use. A nil *Filter matches every event.
type Filter struct {
	observes *trie // nil: every event
	entities selector
	events   selector
	payload  *conditions // nil: no payload condition
}

type selector struct {
	include, exclude *trie // nil: not set
}

func (s selector) match(v string) bool {
	return (s.include == nil || s.include.match(v)) && (s.exclude == nil || !s.exclude.match(v))
}

// Compile validates observes and c and compiles them. An empty observes
// list observes every event. The error joins one *field.Error per
// problem, each naming the field and position of the mistake
// ("observes[2]: empty pattern",
// "filter_conditions.payload.$or[1].total: $gt needs a number or a string").
func Compile(observes []string, c Conditions) (*Filter, error) {
	var p field.Problems
	f := &Filter{
		observes: compilePatterns(observes, "observes", false, &p),
		entities: selector{
			include: compilePatterns(c.Entities.Include, "filter_conditions.entities.include", true, &p),
			exclude: compilePatterns(c.Entities.Exclude, "filter_conditions.entities.exclude", true, &p),
		},
		events: selector{
			include: compilePatterns(c.Events.Include, "filter_conditions.events.include", false, &p),
			exclude: compilePatterns(c.Events.Exclude, "filter_conditions.events.exclude", false, &p),
		},
		payload: compileConditions(c.Payload, "filter_conditions.payload", &p),
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	return f, nil
}

// compilePatterns returns nil for an empty list. Entity patterns are a
// single segment, as an entity is.
func compilePatterns(patterns []string, at string, entity bool, p *field.Problems) *trie {
	if len(patterns) == 0 {
		return nil
	}
	ok := true
	for i, pat := range patterns {
		rule := checkName(pat, true)
		if rule == "" && entity && strings.Contains(pat, ".") {
			rule = "an entity is a single segment (the first of the event name)"
		}
		if rule != "" {
			p.Add(fmt.Sprintf("%s[%d]", at, i), "%s", rule)
			ok = false
		}
	}
	if !ok {
		return nil
	}
	return newTrie(patterns)
}

// Match reports whether the event named name, with the JSON payload, passes
// the filter. The payload is read only when NeedsPayload; if it is not valid
// JSON then, the event does not match. An empty payload is null, as in the
// envelope: it has no field. A name longer than MaxNameLen (no
// valid event has one) matches no pattern but "*" and "**".
func (f *Filter) Match(name string, payload []byte) bool {
	if !f.MatchName(name) {
		return false
	}
	if !f.NeedsPayload() {
		return true
	}
	if len(payload) == 0 {
		payload = null
	}
	return f.payload.match(payload)
}

// MatchName reports whether an event named name passes the observes
// patterns and the entity and event selectors, ignoring payload conditions.
// It allocates nothing.
func (f *Filter) MatchName(name string) bool {
	if f == nil {
		return true
	}
	if f.observes != nil && !f.observes.match(name) {
		return false
	}
	entity := name
	if dot := strings.IndexByte(name, '.'); dot >= 0 {
		entity = name[:dot]
	}
	return f.entities.match(entity) && f.events.match(name)
}

var null = []byte("null")

// NeedsPayload reports whether Match reads the payload (the filter has
// payload conditions).
func (f *Filter) NeedsPayload() bool {
	return f != nil && f.payload != nil
}
