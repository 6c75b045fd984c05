package segments

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/sinkbus/sinkbus/replay"
)

// The frame format is described at the top of segment.go.
const (
	frameHeader = 8  // u32 body length + u32 CRC32C of the body
	bodyFixed   = 16 // u64 offset + i64 unix nanoseconds
	minBody     = bodyFixed + 2
	// maxBody bounds a frame so a corrupt length never makes a reader
	// allocate gigabytes.
	maxBody = 1 << 28
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var (
	// errTorn: the bytes end inside a frame (a write cut short by a crash).
	errTorn = errors.New("incomplete record")
	// errCorrupt: a frame is complete but wrong (length, checksum, contents).
	errCorrupt = errors.New("corrupt record")
)

// frameSize returns the encoded size of r, or -1 when it exceeds maxBody.
func frameSize(r *replay.Record) int {
	n := bodyFixed + uvarintLen(len(r.UUID)) + len(r.UUID) + uvarintLen(len(r.Metadata)) + len(r.Payload)
	for k, v := range r.Metadata {
		n += uvarintLen(len(k)) + len(k) + uvarintLen(len(v)) + len(v)
	}
	if n > maxBody {
		return -1
	}
	return frameHeader + n
}

func uvarintLen(n int) int {
	l := 1
	for n >= 0x80 {
		n >>= 7
		l++
	}
	return l
}

// appendFrame appends r's frame, with the given offset and time, to dst.
func appendFrame(dst []byte, r *replay.Record, off uint64, nanos int64) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0)
	dst = binary.LittleEndian.AppendUint64(dst, off)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(nanos))
	dst = binary.AppendUvarint(dst, uint64(len(r.UUID)))
	dst = append(dst, r.UUID...)
	dst = binary.AppendUvarint(dst, uint64(len(r.Metadata)))
	for k, v := range r.Metadata {
		dst = binary.AppendUvarint(dst, uint64(len(k)))
		dst = append(dst, k...)
		dst = binary.AppendUvarint(dst, uint64(len(v)))
		dst = append(dst, v...)
	}
	dst = append(dst, r.Payload...)
	body := dst[start+frameHeader:]
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(body)))
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Checksum(body, castagnoli))
	return dst
}

// frameBody checks the frame at the start of b and returns its body and the
// frame's total length. errTorn means b ends inside the frame.
func frameBody(b []byte) (body []byte, n int, err error) {
	if len(b) < frameHeader {
		return nil, 0, errTorn
	}
	l, err := bodyLen(b)
	if err != nil {
		return nil, 0, err
	}
	if len(b)-frameHeader < l {
		return nil, 0, errTorn
	}
	body = b[frameHeader : frameHeader+l]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(b[4:]) {
		return nil, 0, errCorrupt
	}
	return body, frameHeader + l, nil
}

func bodyLen(header []byte) (int, error) {
	l := binary.LittleEndian.Uint32(header)
	if l < minBody || l > maxBody {
		return 0, errCorrupt
	}
	return int(l), nil
}

func bodyOffset(body []byte) uint64 { return binary.LittleEndian.Uint64(body) }
func bodyNanos(body []byte) int64   { return int64(binary.LittleEndian.Uint64(body[8:])) }

// decodeBody returns a Record that shares nothing with body.
func decodeBody(body []byte) (replay.Record, error) {
	if len(body) < minBody {
		return replay.Record{}, errCorrupt
	}
	rec := replay.Record{Offset: bodyOffset(body), Time: time.Unix(0, bodyNanos(body)).UTC()}
	b := body[bodyFixed:]
	n, payload, ok := cutMetadata(b)
	if !ok {
		return replay.Record{}, errCorrupt
	}
	// The record's strings, its id and metadata values, are cut from one
	// copy of the bytes that hold them: one allocation instead of one each.
	// The keys are interned.
	strs := string(b[:len(b)-len(payload)])
	str := func(s, rest []byte) string { // s, followed by rest, is a piece of b
		end := len(b) - len(rest)
		return strs[end-len(s) : end]
	}
	id, rest, _ := cutBytes(b)
	rec.UUID = str(id, rest)
	_, k := binary.Uvarint(rest)
	rest = rest[k:]
	rec.Metadata = make(map[string]string, n)
	for range n {
		var key, val []byte
		key, rest, _ = cutBytes(rest)
		val, rest, _ = cutBytes(rest)
		rec.Metadata[internKey(key)] = str(val, rest)
	}
	if len(payload) > 0 {
		rec.Payload = append([]byte(nil), payload...)
	}
	return rec, nil
}

// cutMetadata checks the id and the metadata at the start of b, a body
// past its fixed fields, and returns the number of metadata pairs and the
// payload that follows them.
func cutMetadata(b []byte) (n uint64, payload []byte, ok bool) {
	_, rest, ok := cutBytes(b)
	if !ok {
		return 0, nil, false
	}
	n, k := binary.Uvarint(rest)
	// Each pair takes at least two bytes: a corrupt count cannot make us
	// allocate more than the body justifies.
	if k <= 0 || n > uint64(len(rest)-k)/2 {
		return 0, nil, false
	}
	rest = rest[k:]
	for range 2 * n { // a key, then its value
		if _, rest, ok = cutBytes(rest); !ok {
			return 0, nil, false
		}
	}
	return n, rest, true
}

// knownKeys interns metadata keys. A journal's records carry few distinct
// keys (the bus's own and the application's), and a string for each key
// of each record read was a third of a record's allocations. The map is
// replaced, never changed, so a lookup is one atomic load; it stops
// growing at maxKnownKeys.
var knownKeys atomic.Pointer[map[string]string]

const (
	maxKnownKeys   = 256
	maxKnownKeyLen = 64
)

func internKey(b []byte) string {
	if m := knownKeys.Load(); m != nil {
		if s, ok := (*m)[string(b)]; ok {
			return s
		}
	}
	s := string(b)
	if len(b) > maxKnownKeyLen {
		return s
	}
	for {
		old := knownKeys.Load()
		var m map[string]string
		if old == nil {
			m = map[string]string{s: s}
		} else if len(*old) >= maxKnownKeys {
			return s
		} else {
			m = make(map[string]string, len(*old)+1)
			for k, v := range *old {
				m[k] = v
			}
			m[s] = s
		}
		if knownKeys.CompareAndSwap(old, &m) {
			return s
		}
	}
}

// cutBytes cuts a length-prefixed string off b: the bytes, and what follows.
func cutBytes(b []byte) ([]byte, []byte, bool) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return nil, nil, false
	}
	end := k + int(n)
	return b[k:end], b[end:], true
}

// frameScanner reads the frames of a file between two positions through a
// buffer that grows only to the largest frame.
type frameScanner struct {
	f    *os.File
	pos  int64 // file position of buf[r]
	end  int64
	buf  []byte
	r, w int
}

const scanBuffer = 64 << 10

func newFrameScanner(f *os.File, pos, end int64, buf []byte) *frameScanner {
	if len(buf) == 0 {
		buf = make([]byte, scanBuffer)
	}
	return &frameScanner{f: f, pos: pos, end: end, buf: buf}
}

// next returns the body of the frame at s.pos and that position; the body is
// valid until the following call. It returns io.EOF at the end, errTorn or
// errCorrupt at a bad frame (without moving), or a read error.
func (s *frameScanner) next() (body []byte, at int64, err error) {
	at = s.pos
	if at >= s.end {
		return nil, at, io.EOF
	}
	if err := s.fill(frameHeader); err != nil {
		return nil, at, err
	}
	l, err := bodyLen(s.buf[s.r:])
	if err != nil {
		return nil, at, err
	}
	if err := s.fill(frameHeader + l); err != nil {
		return nil, at, err
	}
	body, n, err := frameBody(s.buf[s.r:s.w])
	if err != nil {
		return nil, at, err
	}
	s.r += n
	s.pos += int64(n)
	return body, at, nil
}

// fill makes at least n unread bytes available, or returns errTorn when the
// range (or the file) ends first.
func (s *frameScanner) fill(n int) error {
	if s.w-s.r >= n {
		return nil
	}
	if int64(n) > s.end-s.pos {
		return errTorn
	}
	copy(s.buf, s.buf[s.r:s.w])
	s.w -= s.r
	s.r = 0
	if len(s.buf) < n {
		s.buf = append(s.buf[:s.w], make([]byte, n-s.w)...)
		s.buf = s.buf[:cap(s.buf)]
	}
	want := int64(len(s.buf))
	if rest := s.end - s.pos; rest < want {
		want = rest
	}
	got, err := s.f.ReadAt(s.buf[s.w:want], s.pos+int64(s.w))
	s.w += got
	if s.w >= n {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return errTorn
	}
	return err
}
