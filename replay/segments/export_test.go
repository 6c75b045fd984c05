package segments

import (
	"time"

	"github.com/sinkbus/sinkbus/replay"
)

// Hooks for the external tests of the segment format.

// DecodeFrame decodes the frame at the start of b and returns the record and
// the frame's length.
func DecodeFrame(b []byte) (replay.Record, int, error) {
	body, n, err := frameBody(b)
	if err != nil {
		return replay.Record{}, 0, err
	}
	rec, err := decodeBody(body)
	return rec, n, err
}

// DecodeBody decodes a frame's body, the part after the checksum.
func DecodeBody(b []byte) (replay.Record, error) { return decodeBody(b) }

// EncodeFrame encodes r with its own Offset and Time.
func EncodeFrame(r *replay.Record) []byte { return appendFrame(nil, r, r.Offset, r.Time.UnixNano()) }

var (
	EscapeTopic   = escapeTopic
	UnescapeTopic = unescapeTopic
)

// DataSyncs returns how many fsyncs of record data topic has had since open.
func DataSyncs(s *Storage, topic string) uint64 { return s.lookup(topic).dataSyncs.Load() }

// AfterSegmentRead makes fn run each time a Read, Seek or Trim of s has
// looked through a segment to its end, before it goes on. Set it before
// using s.
func AfterSegmentRead(s *Storage, fn func()) { s.afterSegmentRead = fn }

// SyncTook returns the moving average of topic's data fsyncs.
func SyncTook(s *Storage, topic string) time.Duration {
	t := s.lookup(topic)
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.syncTook
}
