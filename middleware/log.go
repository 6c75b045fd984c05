package middleware

import (
	"encoding/json"
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
	m.append(integrationID, e)
	return nil
}

func (m *MemoryLog) append(integrationID string, e LogEntry) {
	l := m.logs[integrationID]
	if len(l) >= m.size {
		n := copy(l, l[len(l)-m.size+1:])
		l = l[:n]
	}
	m.logs[integrationID] = append(l, e)
}

// Entries returns the log of integrationID, newest first.
func (m *MemoryLog) Entries(integrationID string) ([]LogEntry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.entries(integrationID), nil
}

func (m *MemoryLog) entries(integrationID string) []LogEntry {
	l := m.logs[integrationID]
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

// FileLog is a LogStore that survives restarts: a MemoryLog mirrored to one
// JSON file per integration in a directory.
type FileLog struct {
	mem        *MemoryLog // its mutex also orders the file writes
	files      fileDir
	unreadable []error
}

type logFile struct {
	IntegrationID string     `json:"integration_id"`
	Entries       []LogEntry `json:"entries"` // newest first
}

// OpenFileLog opens (creating it if needed) the log kept in dir, size
// entries per integration (zero means DefaultLogSize), and loads it. A file
// that cannot be decoded is set aside (see Unreadable).
func OpenFileLog(dir string, size int) (*FileLog, error) {
	files, err := openFileDir(dir, ".log.json", false)
	if err != nil {
		return nil, err
	}
	l := &FileLog{mem: NewMemoryLog(size), files: files}
	l.unreadable, err = files.load(func(data []byte) error {
		var f logFile
		if err := json.Unmarshal(data, &f); err != nil {
			return err
		}
		for i := len(f.Entries) - 1; i >= 0; i-- {
			l.mem.append(f.IntegrationID, f.Entries[i])
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return l, nil
}

// Unreadable returns the files OpenFileLog could not decode: each was
// renamed with UnreadableSuffix and left out, so that the log opens.
func (l *FileLog) Unreadable() []error { return l.unreadable }

// Append adds e and rewrites the integration's file. The log is a
// diagnostic, so the file is not synced to disk.
func (l *FileLog) Append(integrationID string, e LogEntry) error {
	l.mem.mu.Lock()
	defer l.mem.mu.Unlock()
	l.mem.append(integrationID, e)
	return l.files.write(integrationID, logFile{IntegrationID: integrationID, Entries: l.mem.entries(integrationID)})
}

// Entries returns the log of integrationID, newest first.
func (l *FileLog) Entries(integrationID string) ([]LogEntry, error) {
	return l.mem.Entries(integrationID)
}

// Drop forgets the log of integrationID and removes its file.
func (l *FileLog) Drop(integrationID string) error {
	l.mem.mu.Lock()
	defer l.mem.mu.Unlock()
	delete(l.mem.logs, integrationID)
	return l.files.remove(integrationID)
}
