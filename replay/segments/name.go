package segments

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

const (
	cursorsFile    = "cursors.json"
	segmentSuffix  = ".seg"
	floorSuffix    = ".trimmed" // <first retained offset>.trimmed: what Trim hid
	topicNameFile  = "topic"    // holds the topic of a hashed directory name
	maxTopicDir    = 200
	hashedSep      = '~'
	hashedPrefixes = 100
)

// escapeTopic turns any topic into one safe directory name, the same on
// case-insensitive file systems: [a-z0-9_-] and inner dots stay, an upper-case
// letter becomes '!' and the letter, every other byte "%xx". A name that
// would be empty or longer than maxTopicDir becomes a prefix, '~' and a hash
// of the topic, and the directory keeps the topic in a file.
func escapeTopic(topic string) string {
	var b strings.Builder
	for i := 0; i < len(topic); i++ {
		c := topic[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_', c == '.' && i > 0:
			b.WriteByte(c)
		case 'A' <= c && c <= 'Z':
			b.WriteByte('!')
			b.WriteByte(c + 'a' - 'A')
		default:
			fmt.Fprintf(&b, "%%%02x", c)
		}
	}
	name := b.String()
	if name == cursorsFile {
		name = "cursors%2ejson"
	}
	if name == "" || len(name) > maxTopicDir {
		sum := sha256.Sum256([]byte(topic))
		name = name[:min(len(name), hashedPrefixes)] + string(hashedSep) + hex.EncodeToString(sum[:16])
	}
	return name
}

// hashedTopicDir reports whether name is a hashed directory name, whose topic
// is in its topicNameFile.
func hashedTopicDir(name string) bool { return strings.IndexByte(name, hashedSep) >= 0 }

// unescapeTopic reverses escapeTopic for names that are not hashed; ok is
// false for any name escapeTopic does not produce.
func unescapeTopic(name string) (string, bool) {
	if name == "" || hashedTopicDir(name) {
		return "", false
	}
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch c {
		case '!':
			if i+1 >= len(name) || name[i+1] < 'a' || name[i+1] > 'z' {
				return "", false
			}
			b.WriteByte(name[i+1] - 'a' + 'A')
			i++
		case '%':
			if i+2 >= len(name) {
				return "", false
			}
			v, err := strconv.ParseUint(name[i+1:i+3], 16, 8)
			if err != nil {
				return "", false
			}
			b.WriteByte(byte(v))
			i += 2
		default:
			b.WriteByte(c)
		}
	}
	topic := b.String()
	if escapeTopic(topic) != name {
		return "", false
	}
	return topic, true
}

// segmentName is a segment's file name: its first offset in 20 digits, so
// names sort in offset order.
func segmentName(base uint64) string { return fmt.Sprintf("%020d%s", base, segmentSuffix) }

func parseSegmentName(name string) (uint64, bool) { return parseOffsetName(name, segmentSuffix) }

// floorName is the marker file of a topic's trim floor.
func floorName(floor uint64) string { return fmt.Sprintf("%020d%s", floor, floorSuffix) }

func parseOffsetName(name, suffix string) (uint64, bool) {
	digits, ok := strings.CutSuffix(name, suffix)
	if !ok || len(digits) != 20 {
		return 0, false
	}
	base, err := strconv.ParseUint(digits, 10, 64)
	return base, err == nil && base > 0
}
