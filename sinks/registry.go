package sinks

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"sync"

	"github.com/sinkbus/sinkbus/field"
)

// Type is a kind of sink the bus can build from JSON: its integration_type
// name and the decoder of its "configuration" object.
type Type struct {
	// Name is the integration_type: "webhook", "aws_sqs", "stomp", "file", "s3", ...
	Name string
	// Decode parses a configuration object. It returns field errors named
	// relative to the object ("url"), and does not validate: the bus calls
	// Config.Validate next.
	Decode func(configuration json.RawMessage) (Config, error)
}

// ErrUnknownType is returned for an integration_type nobody registered.
var ErrUnknownType = errors.New("sinkbus: unknown integration type")

var typeName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,49}$`)

// Registry maps integration types to their decoders. Safe for concurrent use.
type Registry struct {
	mu    sync.RWMutex
	types map[string]Type
}

// NewRegistry returns a registry holding types. It panics on an invalid or
// repeated type, as that is a programming mistake.
func NewRegistry(types ...Type) *Registry {
	r := &Registry{types: make(map[string]Type)}
	for _, t := range types {
		if err := r.Register(t); err != nil {
			panic(err)
		}
	}
	return r
}

// Register adds a type. Names match ^[a-z][a-z0-9_]{0,49}$ and are unique.
func (r *Registry) Register(t Type) error {
	if !typeName.MatchString(t.Name) {
		return fmt.Errorf("sinkbus: type name %q must match %s", t.Name, typeName)
	}
	if t.Decode == nil {
		return fmt.Errorf("sinkbus: type %q has no Decode", t.Name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.types[t.Name]; ok {
		return fmt.Errorf("sinkbus: type %q registered twice", t.Name)
	}
	r.types[t.Name] = t
	return nil
}

// Decode parses configuration as a config of type name.
func (r *Registry) Decode(name string, configuration json.RawMessage) (Config, error) {
	r.mu.RLock()
	t, ok := r.types[name]
	r.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownType, name)
	}
	if len(configuration) == 0 || string(configuration) == "null" {
		configuration = json.RawMessage("{}")
	}
	return t.Decode(configuration)
}

// Clone returns a new registry holding r's types, to which more can be
// added without changing r.
func (r *Registry) Clone() *Registry {
	r.mu.RLock()
	defer r.mu.RUnlock()
	c := &Registry{types: make(map[string]Type, len(r.types))}
	for n, t := range r.types {
		c.types[n] = t
	}
	return c
}

// Has reports whether name is registered.
func (r *Registry) Has(name string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, ok := r.types[name]
	return ok
}

// Names returns the registered type names, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.types))
	for n := range r.types {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// defaultRegistry holds the types registered with Register.
var defaultRegistry = NewRegistry()

// Register adds t to the default registry. Each sink package calls it from
// its init, as database/sql drivers do, so that a program builds exactly
// the sink types it imports: importing sinks/webhook makes "webhook" known,
// and sinks/all imports every built-in type. It panics when t is invalid or
// its name is taken, as that is a programming mistake.
func Register(t Type) {
	if err := defaultRegistry.Register(t); err != nil {
		panic(err)
	}
}

// DefaultRegistry returns the registry Register adds to: the one a bus
// uses when its configuration names none.
func DefaultRegistry() *Registry { return defaultRegistry }

// DecodeInto is the Decode of most types: strict JSON into a fresh *C.
func DecodeInto[C any, P interface {
	*C
	Config
}](configuration json.RawMessage) (Config, error) {
	var c C
	if err := field.DecodeStrict(configuration, &c); err != nil {
		return nil, err
	}
	return P(&c), nil
}
