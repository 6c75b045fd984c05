package replay

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
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
	tmp := filepath.Join(dir, cursorsTemp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(append(data, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, cursorsFile))
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("sinkbus: save journal cursors: %w", err)
	}
	return nil
}

// syncDir makes the creation, renaming or removal of dir's entries durable.
// Windows cannot sync a directory; NTFS journals its entries itself.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
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
