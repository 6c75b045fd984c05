package segments_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/replay"
	"github.com/sinkbus/sinkbus/replay/segments"
)

// FuzzDecodeRecord: the frame decoder never panics, never reads past its
// input, and what it accepts encodes back to the same record. The input is
// also decoded as a body, behind the checksum a random frame rarely passes.
func FuzzDecodeRecord(f *testing.F) {
	valid := segments.EncodeFrame(&replay.Record{
		Offset: 7, Time: time.Unix(1700000000, 5), UUID: "u-1",
		Metadata: map[string]string{"k": "v", "name": "order.created"}, Payload: []byte(`{"a":1}`),
	})
	f.Add(valid)
	f.Add(valid[:len(valid)-1])
	f.Add(valid[:5])
	f.Add(segments.EncodeFrame(&replay.Record{Offset: 1}))
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Add(append(append([]byte(nil), valid...), 1, 2, 3))
	f.Add(valid[8:])
	f.Fuzz(func(t *testing.T, data []byte) {
		if rec, err := segments.DecodeBody(data); err == nil {
			assertReencodes(t, rec)
		}
		rec, n, err := segments.DecodeFrame(data)
		if err != nil {
			return
		}
		require.LessOrEqual(t, n, len(data))
		assertReencodes(t, rec)
	})
}

func assertReencodes(t *testing.T, rec replay.Record) {
	t.Helper()
	again := segments.EncodeFrame(&rec)
	back, m, err := segments.DecodeFrame(again)
	require.NoError(t, err)
	require.Equal(t, len(again), m)
	assert.Equal(t, rec.Offset, back.Offset)
	assert.True(t, rec.Time.Equal(back.Time))
	assert.Equal(t, rec.UUID, back.UUID)
	assert.Equal(t, rec.Metadata, back.Metadata)
	assert.Equal(t, rec.Payload, back.Payload)
}

// FuzzEscapeTopic: every topic becomes one path element that maps back to it.
func FuzzEscapeTopic(f *testing.F) {
	for _, s := range []string{"order.fulfilled", "", ".", "..", "a/b", "cursors.json", "Ä", strings.Repeat("x", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, topic string) {
		name := segments.EscapeTopic(topic)
		require.NotEmpty(t, name)
		require.LessOrEqual(t, len(name), 255)
		require.NotContains(t, []string{".", "..", "cursors.json"}, name)
		require.NotContains(t, name, "/")
		require.NotContains(t, name, "\\")
		require.NotContains(t, name, "\x00")
		require.NotEqual(t, byte('.'), name[0])
		if strings.Contains(name, "~") {
			return // hashed: the topic is kept in the directory
		}
		back, ok := segments.UnescapeTopic(name)
		require.True(t, ok)
		require.Equal(t, topic, back)
		require.Equal(t, strings.ToLower(name), name, "no two topics differ only by case on disk")
	})
}
