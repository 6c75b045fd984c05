package replay

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/sinkbus/sinkbus/internal/atomicfile"
)

// cursorEntry is one line of cursors.json.
type cursorEntry struct {
	Topic  string `json:"topic"`
	Group  string `json:"group"`
	Offset uint64 `json:"offset"`
}

func loadCursors(dir string) (map[CursorKey]uint64, error) {
	out := make(map[CursorKey]uint64)
	data, err := os.ReadFile(filepath.Join(dir, cursorsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	var entries []cursorEntry
	if err := json.Unmarshal(data, &entries); err != nil {
		return nil, fmt.Errorf("sinkbus: journal cursors %s: %w", filepath.Join(dir, cursorsFile), err)
	}
	for _, e := range entries {
		out[CursorKey{Topic: e.Topic, Group: e.Group}] = e.Offset
	}
	return out, nil
}

// writeCursors replaces cursors.json atomically: a crash leaves either the
// old file or the new one, never a mix.
func writeCursors(dir string, cursors map[CursorKey]uint64) error {
	entries := make([]cursorEntry, 0, len(cursors))
	for k, v := range cursors {
		entries = append(entries, cursorEntry{Topic: k.Topic, Group: k.Group, Offset: v})
	}
	sort.Slice(entries, func(i, j int) bool {
		if entries[i].Topic != entries[j].Topic {
			return entries[i].Topic < entries[j].Topic
		}
		return entries[i].Group < entries[j].Group
	})
	data, err := json.MarshalIndent(entries, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, cursorsFile), append(data, '\n'), 0o644, true); err != nil {
		return fmt.Errorf("sinkbus: save journal cursors: %w", err)
	}
	return nil
}

// Cursors implements Storage.
func (s *Segments) Cursors() (map[CursorKey]uint64, error) {
	s.cursorMu.Lock()
	defer s.cursorMu.Unlock()
	out := make(map[CursorKey]uint64, len(s.cursors))
	for k, v := range s.cursors {
		out[k] = v
	}
	return out, nil
}

// SaveCursors implements Storage: it sets the given cursors, keeps the others,
// and writes them all to cursors.json before it returns. On error nothing
// changes.
func (s *Segments) SaveCursors(cursors map[CursorKey]uint64) error {
	if s.closed.Load() {
		return ErrSegmentsClosed
	}
	s.cursorMu.Lock()
	defer s.cursorMu.Unlock()
	next := make(map[CursorKey]uint64, len(s.cursors)+len(cursors))
	for k, v := range s.cursors {
		next[k] = v
	}
	for k, v := range cursors {
		next[k] = v
	}
	if err := writeCursors(s.cfg.Dir, next); err != nil {
		return err
	}
	s.cursors = next
	return nil
}

// DeleteCursor implements Storage.
func (s *Segments) DeleteCursor(key CursorKey) error {
	if s.closed.Load() {
		return ErrSegmentsClosed
	}
	s.cursorMu.Lock()
	defer s.cursorMu.Unlock()
	if _, ok := s.cursors[key]; !ok {
		return nil
	}
	next := make(map[CursorKey]uint64, len(s.cursors))
	for k, v := range s.cursors {
		if k != key {
			next[k] = v
		}
	}
	if err := writeCursors(s.cfg.Dir, next); err != nil {
		return err
	}
	s.cursors = next
	return nil
}
