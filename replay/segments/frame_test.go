package segments_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/replay"
	"github.com/sinkbus/sinkbus/replay/segments"
)

// A decoded record's id and metadata values are cut from one string: they
// stay intact when the bytes they were read from are reused, and a record
// costs four allocations (those strings, the map and its slots, the
// payload), however many values it has.
func TestDecodeFrame_shares_nothing_with_the_bytes(t *testing.T) {
	want := replay.Record{
		Offset: 3, Time: time.Unix(1700000000, 7).UTC(), UUID: "01J00000000000000000000000",
		Metadata: map[string]string{"sinkbus_name": "order.created", "sinkbus_published_at": "2026-12-07T10:00:00.123Z", "k": "v"},
		Payload:  []byte(`{"id":1}`),
	}
	frame := segments.EncodeFrame(&want)
	got, n, err := segments.DecodeFrame(frame)
	require.NoError(t, err)
	require.Equal(t, len(frame), n)
	for i := range frame {
		frame[i] = 0xff
	}
	assert.Equal(t, want, got)

	frame = segments.EncodeFrame(&want)
	allocs := testing.AllocsPerRun(100, func() {
		if _, _, err := segments.DecodeFrame(frame); err != nil {
			t.Fatal(err)
		}
	})
	assert.LessOrEqual(t, allocs, 4.0)
}
