package segments_test

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/replay/segments"
	"github.com/sinkbus/sinkbus/replay/storagetest"
)

// One holder of a journal directory at a time: a second one is refused,
// naming the directory and the holder; with LockWait it gets the directory
// once the first lets go. (bus/datadir_lock_test.go does it with two
// processes.)
func TestSegments_one_holder_per_directory(t *testing.T) {
	dir := t.TempDir()
	first, err := segments.Open(segments.Config{Dir: dir})
	require.NoError(t, err)

	_, err = segments.Open(segments.Config{Dir: dir})
	require.ErrorIs(t, err, segments.ErrDirLocked)
	assert.Contains(t, err.Error(), dir)
	assert.Contains(t, err.Error(), "pid "+strconv.Itoa(os.Getpid()))

	opened := make(chan error, 1)
	go func() {
		s, err := segments.Open(segments.Config{Dir: dir, LockWait: time.Minute})
		if err == nil {
			err = s.Close()
		}
		opened <- err
	}()
	select {
	case err := <-opened:
		t.Fatalf("opened while the first holds the directory: %v", err)
	default:
	}
	require.NoError(t, first.Close())
	require.NoError(t, <-opened, "the waiting one takes over once the first closed")
}

// A tail cut at open is never silent: without a logger it goes to
// slog.Default(), and OnDamage counts it.
func TestSegments_a_cut_tail_is_logged_without_a_logger_and_reported(t *testing.T) {
	dir := t.TempDir()
	s := openSegs(t, segments.Config{Dir: dir})
	storagetest.AppendN(t, s, "orders", 1, 3, storagetest.NewStepClock(time.Second).Now)
	require.NoError(t, s.Close())
	seg := filepath.Join(dir, "orders", "00000000000000000001.seg")
	f, err := os.OpenFile(seg, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.Write([]byte{40, 0, 0, 0, 1, 2, 3}) // a frame cut short
	require.NoError(t, err)
	require.NoError(t, f.Close())

	var logged bytes.Buffer
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(slog.New(slog.NewTextHandler(&logged, nil)))
	var damage []segments.Damage
	s, err = segments.Open(segments.Config{Dir: dir, OnDamage: func(d segments.Damage) { damage = append(damage, d) }})
	require.NoError(t, err)
	defer s.Close()
	require.Len(t, damage, 1)
	assert.Equal(t, seg, damage[0].File)
	assert.Equal(t, int64(7), damage[0].Bytes)
	assert.True(t, damage[0].Cut)
	assert.Contains(t, logged.String(), "cut it off")
	assert.Contains(t, logged.String(), seg)
	assert.Len(t, storagetest.ReadAll(t, s, "orders"), 3, "the complete records stay")
}
