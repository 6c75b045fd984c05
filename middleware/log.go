package middleware

import (
	"encoding/json"
	"fmt"
	"sync"
	"time"
)

// Actions of the integration log (NewStore's vocabulary, plus the circuit
// breaker's and the bus's own).
const (
	ActionIntegrationStarted   = "integration_started"
	ActionIntegrationStopped   = "integration_stopped"
	ActionIntegrationCompleted = "integration_completed"
	ActionRetryTriggered       = "retry_triggered"
	ActionEventRejected        = "event_rejected"
	ActionEventSkipped         = "event_skipped"
	ActionRejectedEvicted      = "rejected_event_evicted"
	ActionRejectedDelivered    = "rejected_event_delivered"
	ActionCircuitWarning       = "circuit_warning"
	ActionCircuitOpened        = "circuit_opened"
	ActionCircuitProbeFailed   = "circuit_probe_failed"
	ActionCircuitClosed        = "circuit_closed"
	ActionCircuitReset         = "circuit_reset"
	ActionRetentionLoss        = "events_lost_to_retention"
	ActionReadingPaused        = "reading_paused"
	ActionReadingResumed       = "reading_resumed"
)

// DefaultLogSize is how many entries a log keeps per integration (NewStore:
// the last 50).
const DefaultLogSize = 50

// LogEntry is one line of an integration's log.
type LogEntry struct {
	Action string `json:"action"`
	Reason string `json:"reason"`
	// EventID names the event the entry is about, if any.
	EventID   string    `json:"event_id,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// LogStore keeps the last entries of each integration's log. Implementations
// are safe for concurrent use.
type LogStore interface {
	// Append adds e to the log of integrationID, dropping the oldest entry
	// when the log is full.
	Append(integrationID string, e LogEntry) error
	// Entries returns the log of integrationID, newest first; empty when
	// there is none.
	Entries(integrationID string) ([]LogEntry, error)
	// Drop forgets the log of integrationID.
	Drop(integrationID string) error
}

// MemoryLog is a LogStore in memory: a bounded list per integration.
type MemoryLog struct {
	mu   sync.Mutex
	size int
	logs map[string][]LogEntry // oldest first
}

// NewMemoryLog returns a log keeping size entries per integration; zero
// means DefaultLogSize.
func NewMemoryLog(size int) *MemoryLog {
	if size <= 0 {
		size = DefaultLogSize
	}
	return &MemoryLog{size: size, logs: make(map[string][]LogEntry)}
}

// Append adds e, dropping the oldest entry when the log is full.
func (m *MemoryLog) Append(integrationID string, e LogEntry) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.logs[integrationID] = appendEntry(m.logs[integrationID], e, m.size)
	return nil
}

// appendEntry returns l (oldest first) with e added and, past size, without
// the oldest; l is not modified.
func appendEntry(l []LogEntry, e LogEntry, size int) []LogEntry {
	keep := min(len(l), size-1)
	out := make([]LogEntry, 0, keep+1)
	return append(append(out, l[len(l)-keep:]...), e)
}

// Entries returns the log of integrationID, newest first.
func (m *MemoryLog) Entries(integrationID string) ([]LogEntry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return newestEntriesFirst(m.logs[integrationID]), nil
}

func newestEntriesFirst(l []LogEntry) []LogEntry {
	out := make([]LogEntry, len(l))
	for i, e := range l {
		out[len(l)-1-i] = e
	}
	return out
}

// Drop forgets the log of integrationID.
func (m *MemoryLog) Drop(integrationID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.logs, integrationID)
	return nil
}

// FileLog is a LogStore that survives restarts: an append-only log of
// entries per integration, in segment files under a directory of its own
// (see the file stores in filestore.go), compacted to the last entries as
// it grows. An entry costs its own write, integrations do not wait for
// each other, and Entries never waits for a write. The log is a
// diagnostic: entries are not synced to disk. What cannot be decoded is
// set aside (see Unreadable).
type FileLog struct {
	size  int
	files *docDir[[]LogEntry]
}

// logSegmentBytes is the size of a FileLog segment. A log keeps only its
// last entries: it is compacted long before.
const logSegmentBytes = 1 << 20

// logFile is the document of the former format: one per integration,
// rewritten whole at each entry.
type logFile struct {
	IntegrationID string     `json:"integration_id"`
	Entries       []LogEntry `json:"entries"` // newest first
}

// OpenFileLog opens (creating it if needed) the log kept in dir, size
// entries per integration (zero means DefaultLogSize), and loads it. Files
// of the former format (one .log.json document per integration) are
// converted.
func OpenFileLog(dir string, size int) (*FileLog, error) {
	if size <= 0 {
		size = DefaultLogSize
	}
	codec := docCodec[[]LogEntry]{
		apply: func(l []LogEntry, body []byte, _ uint64) ([]LogEntry, error) {
			var e LogEntry
			if err := json.Unmarshal(body, &e); err != nil {
				return l, fmt.Errorf("sinkbus: integration log: unreadable entry: %w", err)
			}
			return appendEntry(l, e, size), nil
		},
		records: func(l []LogEntry) [][]byte {
			out := make([][]byte, len(l))
			for i, e := range l {
				out[i] = encodeEntry(e)
			}
			return out
		},
		bytes: func(l []LogEntry) int64 {
			var n int64
			for _, e := range l {
				n += int64(len(e.Action)+len(e.Reason)+len(e.EventID)) + 80
			}
			return n
		},
	}
	files, err := openDocDir(dir, ".log", false, logSegmentBytes, []LogEntry(nil), codec, ".log.json",
		func(data []byte) (string, []LogEntry, error) {
			var f logFile
			if err := json.Unmarshal(data, &f); err != nil {
				return "", nil, err
			}
			var l []LogEntry
			for i := len(f.Entries) - 1; i >= 0; i-- {
				l = appendEntry(l, f.Entries[i], size)
			}
			return f.IntegrationID, l, nil
		})
	if err != nil {
		return nil, err
	}
	return &FileLog{size: size, files: files}, nil
}

func encodeEntry(e LogEntry) []byte {
	b, err := json.Marshal(e)
	if err != nil { // a LogEntry always encodes
		panic(err)
	}
	return b
}

// Append adds e to the integration's file, dropping the oldest entry when
// the log is full.
func (l *FileLog) Append(integrationID string, e LogEntry) error {
	_, err := l.files.change(integrationID, func(cur []LogEntry, _ uint64) ([]LogEntry, []byte, any, error) {
		return appendEntry(cur, e, l.size), encodeEntry(e), nil, nil
	})
	return err
}

// Entries returns the log of integrationID, newest first, as last written,
// without waiting for a write under way.
func (l *FileLog) Entries(integrationID string) ([]LogEntry, error) {
	return newestEntriesFirst(l.files.read(integrationID)), nil
}

// Drop forgets the log of integrationID and removes its file.
func (l *FileLog) Drop(integrationID string) error { return l.files.drop(integrationID) }

// Unreadable returns what OpenFileLog could not decode: each was renamed
// with UnreadableSuffix and left out, so that the log opens.
func (l *FileLog) Unreadable() []error { return l.files.unreadable }

// Close closes the files. The log must not be used afterwards.
func (l *FileLog) Close() error { return l.files.close() }
