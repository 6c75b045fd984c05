package replay_test

import (
	"time"

	"github.com/sinkbus/sinkbus/replay"
)

// hookStorage wraps a Storage so that a test can fail or hold some calls.
// Nil hooks pass through.
type hookStorage struct {
	replay.Storage
	// read runs before each Read; a non-nil error is returned instead.
	read func() error
	// readMax runs before each Read with how many records it asks for.
	readMax func(max int)
	// save runs before each SaveCursors with what is about to be saved.
	save func(map[replay.CursorKey]replay.Cursor)
	// afterNow runs in each Append once it has asked the time, before the
	// records are stored: a slow fsync.
	afterNow func()
}

func (h *hookStorage) Append(topic string, recs []*replay.Record, now func() time.Time) error {
	if h.afterNow == nil {
		return h.Storage.Append(topic, recs, now)
	}
	at := now()
	h.afterNow()
	return h.Storage.Append(topic, recs, func() time.Time { return at })
}

func (h *hookStorage) Read(topic string, from uint64, max int) ([]replay.Record, error) {
	if h.readMax != nil {
		h.readMax(max)
	}
	if h.read != nil {
		if err := h.read(); err != nil {
			return nil, err
		}
	}
	return h.Storage.Read(topic, from, max)
}

func (h *hookStorage) SaveCursors(c map[replay.CursorKey]replay.Cursor) error {
	if h.save != nil {
		h.save(c)
	}
	return h.Storage.SaveCursors(c)
}
