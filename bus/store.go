package bus

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"

	"github.com/sinkbus/sinkbus/internal/atomicfile"
	"github.com/sinkbus/sinkbus/sinks"
)

// integrationStore keeps the integrations across restarts.
type integrationStore interface {
	load(reg *sinks.Registry) ([]Integration, error)
	save(list []Integration) error
}

type memoryStore struct{}

func (memoryStore) load(*sinks.Registry) ([]Integration, error) { return nil, nil }
func (memoryStore) save([]Integration) error                    { return nil }

// fileStore writes every integration, secrets included, to one JSON file
// readable by the owner only, replaced atomically on each change.
type fileStore struct{ path string }

func (s fileStore) load(reg *sinks.Registry) ([]Integration, error) {
	data, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("sinkbus: %s: %w", s.path, err)
	}
	out := make([]Integration, 0, len(raw))
	for i, r := range raw {
		in, p := decodeIntegration(reg, r)
		if err := p.Err(); err != nil {
			return nil, fmt.Errorf("sinkbus: %s: integration %d: %w: %w", s.path, i, ErrInvalid, err)
		}
		out = append(out, in)
	}
	return out, nil
}

func (s fileStore) save(list []Integration) error {
	data, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(s.path, data, 0o600, true)
}

// saveLocked persists every integration that can be persisted (in-process
// handlers cannot: the application registers them again at start-up), but
// not one being created. b.mu is held.
func (b *Bus) saveLocked() error {
	list := make([]Integration, 0, len(b.runners))
	for _, r := range b.runners {
		if _, ok := r.in.Sink.(HandlerFunc); ok || !r.ready {
			continue
		}
		list = append(list, r.in)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
	return b.store.save(list)
}

func (b *Bus) loadIntegrations() error {
	list, err := b.store.load(b.cfg.Sinks)
	if err != nil {
		return err
	}
	for _, in := range list {
		f, err := in.validate(b.cfg.Sinks, maxTime(b.cfg.Clock.Now(), in.StartsAt), nil)
		if err != nil {
			return fmt.Errorf("sinkbus: saved integration %q: %w", in.ID, err)
		}
		chain, err := b.newChain(in)
		if err != nil {
			return fmt.Errorf("sinkbus: saved integration %q: %w", in.ID, err)
		}
		b.runners[in.ID] = &runner{b: b, in: in, filter: f, chain: chain, ready: true}
	}
	return nil
}
