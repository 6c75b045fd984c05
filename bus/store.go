package bus

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/sinkbus/sinkbus/filter"
	"github.com/sinkbus/sinkbus/internal/atomicfile"
	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/sinks"
)

// integrationStore keeps the integrations across restarts.
type integrationStore interface {
	// load returns the saved integrations that can be read; unreadable
	// says why the others cannot (see fileStore.load).
	load(reg *sinks.Registry) (list []Integration, unreadable []error, err error)
	// save stores list, every integration the bus persists, after a
	// change of the one of ref ref: in is what it is now, nil when it is
	// no longer persisted. A store of one process writes the whole list; a
	// store that replicas share writes the change alone.
	save(list []Integration, ref string, in *Integration) error
	// keepAside keeps what was saved, whole, beside the store, before a
	// save replaces it without the integrations the bus could not take.
	keepAside() (string, error)
	// claim takes in's ref for a creation, before anything of it is
	// written, and fails with ErrExists when the ref is taken where this
	// bus cannot see it yet (another replica); release gives it back when
	// the creation fails. A store of one process has nothing to claim.
	claim(in Integration) (release func(), err error)
}

// noClaim is claim for a store of one process: the bus's own lock decides.
func noClaim(Integration) (func(), error) { return func() {}, nil }

type memoryStore struct{}

func (memoryStore) load(*sinks.Registry) ([]Integration, []error, error) { return nil, nil, nil }
func (memoryStore) save([]Integration, string, *Integration) error       { return nil }
func (memoryStore) keepAside() (string, error)                           { return "", nil }
func (memoryStore) claim(in Integration) (func(), error)                 { return noClaim(in) }

// fileStore writes every integration, secrets included, to one JSON file
// readable by the owner only, replaced atomically on each change.
type fileStore struct{ path string }

// load reads every saved integration it can. What it cannot decode (a
// file cut by hand, an integration this version validates more strictly
// than the one that saved it) is returned in unreadable, not as an error:
// no content can keep the bus from starting. Only failing to read the
// file is an error.
func (s fileStore) load(reg *sinks.Registry) ([]Integration, []error, error) {
	data, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, []error{fmt.Errorf("sinkbus: %s: %w", s.path, err)}, nil
	}
	out := make([]Integration, 0, len(raw))
	var unreadable []error
	for i, r := range raw {
		in, p := decodeIntegration(reg, r)
		if err := p.Err(); err != nil {
			unreadable = append(unreadable, fmt.Errorf("sinkbus: %s: integration %d: %w: %w", s.path, i, ErrInvalid, err))
			continue
		}
		out = append(out, in)
	}
	return out, unreadable, nil
}

// keepAside copies the file to <file>.<unix nanoseconds>.unreadable.
func (s fileStore) keepAside() (string, error) {
	data, err := os.ReadFile(s.path)
	if err != nil {
		return "", err
	}
	aside := fmt.Sprintf("%s.%d.unreadable", s.path, time.Now().UnixNano())
	return aside, atomicfile.WriteFile(aside, data, 0o600, true)
}

func (fileStore) claim(in Integration) (func(), error) { return noClaim(in) }

func (s fileStore) save(list []Integration, _ string, _ *Integration) error {
	data, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(s.path, data, 0o600, true)
}

// saveLocked persists every integration that can be persisted (in-process
// handlers cannot: the application registers them again at start-up), but
// not one being created, after a change of changed. b.mu is held.
func (b *Bus) saveLocked(changed *runner) error {
	list := make([]Integration, 0, len(b.runners))
	for _, r := range b.runners {
		if r.persisted() {
			list = append(list, r.in)
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Ref() < list[j].Ref() })
	var cur *Integration
	if changed.persisted() {
		in := changed.in
		cur = &in
	}
	return b.store.save(list, changed.in.Ref(), cur)
}

// persisted reports whether r is saved: created, not gone, not an
// in-process handler. b.mu is held.
func (r *runner) persisted() bool {
	_, handler := r.in.Sink.(HandlerFunc)
	return !handler && r.ready && !r.gone
}

// compileSaved validates a saved integration and builds its filter and
// chain.
func (b *Bus) compileSaved(in Integration) (*filter.Filter, *middleware.Chain, error) {
	f, err := in.validate(b.cfg.Sinks, maxTime(b.cfg.Clock.Now(), in.StartsAt), nil)
	if err != nil {
		return nil, nil, err
	}
	chain, err := b.newChain(in)
	return f, chain, err
}

// loadIntegrations registers the saved integrations. One the bus cannot
// take is left out, with an error in the log, and the file as it was is
// kept aside before anything replaces it: the others start.
func (b *Bus) loadIntegrations() error {
	list, unreadable, err := b.store.load(b.cfg.Sinks)
	if err != nil {
		return err
	}
	for _, in := range list {
		key := in.Ref()
		f, chain, err := b.compileSaved(in)
		if err == nil && b.runners[key] != nil {
			// Two records of one ref: which one's cursor, log and rejected
			// events the others are cannot be told.
			err = fmt.Errorf("%w: %s saved twice", ErrExists, quoteID(key))
		}
		if err != nil {
			unreadable = append(unreadable, fmt.Errorf("sinkbus: saved integration %s: %w", quoteID(key), err))
			continue
		}
		b.runners[key] = &runner{b: b, in: in, filter: f, chain: chain, ready: true}
	}
	if len(unreadable) == 0 {
		return nil
	}
	aside, err := b.store.keepAside()
	if err != nil {
		return fmt.Errorf("sinkbus: cannot keep the saved integrations aside: %w", err)
	}
	for _, err := range unreadable {
		b.cfg.Logger.Error("A saved integration cannot be loaded; the bus starts without it", "error", err,
			"saved_as_was", aside)
	}
	return nil
}
