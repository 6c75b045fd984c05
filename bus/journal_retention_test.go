package bus_test

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/bustest"
)

// journalSegmentBases returns the first offsets of the journal's segment
// files in a DataDir.
func journalSegmentBases(t *testing.T, dataDir string) []uint64 {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dataDir, "journal", "*", "*.seg"))
	require.NoError(t, err)
	var out []uint64
	for _, f := range files {
		b, err := strconv.ParseUint(strings.TrimSuffix(filepath.Base(f), ".seg"), 10, 64)
		require.NoError(t, err)
		out = append(out, b)
	}
	return out
}

// With nothing but a DataDir (64 MiB segments, far more than a test
// publishes), retention still removes what is past the window: from what
// integrations and replays can see, and from the disk.
func TestBus_DataDir_retention_holds_with_default_journal_settings(t *testing.T) {
	dir := t.TempDir()
	clk := bustest.NewClock(time.Time{})
	b := startBus(t, bus.Config{DataDir: dir, Clock: clk, Retention: retention})
	got := make(chan string, 10)
	require.NoError(t, b.Handle("erp", []string{"order.*"}, func(_ context.Context, e bus.Event) error {
		got <- e.ID
		return nil
	}, func(in *bus.Integration) { in.Status = bus.Stopped }))

	require.NoError(t, b.Publish(ctx, bus.Event{ID: "lost-0", Name: "order.created"}, bus.Event{ID: "lost-1", Name: "order.created"}))
	clk.Advance(2 * retention)
	require.NoError(t, b.Publish(ctx, bus.Event{ID: "kept-0", Name: "order.created"}))
	waitTrimmed(t, b, 3)
	require.Eventually(t, func() bool {
		bases := journalSegmentBases(t, dir)
		return len(bases) == 1 && bases[0] == 3
	}, 10*time.Second, time.Millisecond, "the expired events' segment file is deleted")

	_, err := b.Integrations().Start(ctx, "erp")
	require.NoError(t, err)
	select {
	case id := <-got:
		assert.Equal(t, "kept-0", id)
	case <-time.After(10 * time.Second):
		t.Fatal("the retained event was not delivered")
	}
	require.Eventually(t, func() bool {
		lag, err := b.Integrations().Lag(ctx, "erp")
		return err == nil && lag == 0
	}, 10*time.Second, time.Millisecond)
	assert.Empty(t, got, "the removed events never arrive")
	losses := retentionLosses(t, b, "erp")
	if assert.Len(t, losses, 1) {
		assert.True(t, strings.HasPrefix(losses[0], "2 events "), "the entry counts the removed events: %q", losses[0])
	}

	// Nothing published since: the last event expires all the same, and
	// stays expired when the bus opens again.
	clk.Advance(2 * retention)
	waitTrimmed(t, b, 4)
	require.NoError(t, b.Close())
	b2 := startBus(t, bus.Config{DataDir: dir, Clock: clk, Retention: retention})
	first, next := b2.Events().Bounds()
	assert.Equal(t, uint64(4), first)
	assert.Equal(t, uint64(4), next)
}
