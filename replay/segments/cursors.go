package segments

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/sinkbus/sinkbus/internal/atomicfile"
	"github.com/sinkbus/sinkbus/replay"
)

// cursorEntry is one entry of cursors.json. Files written before Acked
// existed have none: every acknowledgement was below Offset then.
type cursorEntry struct {
	Topic  string      `json:"topic"`
	Group  string      `json:"group"`
	Offset uint64      `json:"offset"`
	Acked  [][2]uint64 `json:"acked,omitempty"` // [from, to) pairs above offset
}

func loadCursors(dir string) (map[replay.CursorKey]replay.Cursor, error) {
	out := make(map[replay.CursorKey]replay.Cursor)
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
		c := replay.Cursor{Next: e.Offset}
		for _, r := range e.Acked {
			c.Acked = append(c.Acked, replay.Range{From: r[0], To: r[1]})
		}
		if err := c.Validate(); err != nil {
			// The watermark alone is exact as far as it goes: what is above
			// it is delivered again, never skipped.
			c.Acked = nil
		}
		out[replay.CursorKey{Topic: e.Topic, Group: e.Group}] = c
	}
	return out, nil
}

// writeCursors replaces cursors.json atomically: a crash leaves either the
// old file or the new one, never a mix.
func writeCursors(dir string, cursors map[replay.CursorKey]replay.Cursor) error {
	entries := make([]cursorEntry, 0, len(cursors))
	for k, v := range cursors {
		e := cursorEntry{Topic: k.Topic, Group: k.Group, Offset: v.Next}
		for _, r := range v.Acked {
			e.Acked = append(e.Acked, [2]uint64{r.From, r.To})
		}
		entries = append(entries, e)
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

// Cursors implements replay.Storage.
func (s *Storage) Cursors() (map[replay.CursorKey]replay.Cursor, error) {
	s.cursorMu.Lock()
	defer s.cursorMu.Unlock()
	out := make(map[replay.CursorKey]replay.Cursor, len(s.cursors))
	for k, v := range s.cursors {
		out[k] = v.Clone()
	}
	return out, nil
}

// SaveCursors implements replay.Storage: it sets the given cursors, keeps the others,
// and writes them all to cursors.json before it returns. On error nothing
// changes.
func (s *Storage) SaveCursors(cursors map[replay.CursorKey]replay.Cursor) error {
	if s.closed.Load() {
		return ErrClosed
	}
	s.cursorMu.Lock()
	defer s.cursorMu.Unlock()
	next := make(map[replay.CursorKey]replay.Cursor, len(s.cursors)+len(cursors))
	for k, v := range s.cursors {
		next[k] = v
	}
	for k, v := range cursors {
		next[k] = v.Clone()
	}
	if err := writeCursors(s.cfg.Dir, next); err != nil {
		return err
	}
	s.cursors = next
	return nil
}

// DeleteCursor implements replay.Storage.
func (s *Storage) DeleteCursor(key replay.CursorKey) error {
	if s.closed.Load() {
		return ErrClosed
	}
	s.cursorMu.Lock()
	defer s.cursorMu.Unlock()
	if _, ok := s.cursors[key]; !ok {
		return nil
	}
	next := make(map[replay.CursorKey]replay.Cursor, len(s.cursors))
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
