package segments_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/replay"
	"github.com/sinkbus/sinkbus/replay/segments"
	"github.com/sinkbus/sinkbus/replay/storagetest"
)

// CheckAppend tells, without appending, that a topic refuses appends after
// a write failure, until the storage is reopened; other topics still take
// appends. Here the next segment cannot be created: the topic's directory
// became a plain file (segments of 1 byte start a new file at every
// append).
func TestSegments_CheckAppend_reports_a_topic_that_cannot_write(t *testing.T) {
	dir := t.TempDir()
	s := openSegs(t, segments.Config{Dir: dir, SegmentBytes: 1})
	clk := storagetest.NewStepClock(time.Second)
	storagetest.AppendN(t, s, "events", 0, 2, clk.Now)
	storagetest.AppendN(t, s, "other", 0, 1, clk.Now)
	require.NoError(t, s.CheckAppend("events"))

	require.NoError(t, os.RemoveAll(filepath.Join(dir, "events")))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "events"), nil, 0o600))
	require.Error(t, s.Append("events", []*replay.Record{storagetest.Record(3)}, clk.Now))

	err := s.CheckAppend("events")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `journal topic "events"`)
	assert.NoError(t, s.CheckAppend("other"))
	assert.Error(t, s.Append("events", []*replay.Record{storagetest.Record(4)}, clk.Now), "the failure sticks")
}
