package bus_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/replay"
	"github.com/sinkbus/sinkbus/replay/segments"
)

// dataDirChildEnv makes TestDataDirHolderChild a process that opens a bus
// in the DataDir it names, publishes dataDirEvents events, prints "ready"
// and holds the bus until its stdin ends.
const (
	dataDirChildEnv = "SINKBUS_DATADIR_HOLDER"
	dataDirEvents   = 300
)

// TestDataDirHolderChild is not a test: TestBus_one_process_per_DataDir
// re-executes the test binary to run it.
func TestDataDirHolderChild(t *testing.T) {
	dir := os.Getenv(dataDirChildEnv)
	if dir == "" {
		t.Skip("child process of TestBus_one_process_per_DataDir")
	}
	b, err := bus.New(bus.Config{DataDir: dir})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	for i := range dataDirEvents {
		if err := b.Publish(context.Background(), bus.Event{Name: "order.created", Payload: []byte(`{"n":` + strconv.Itoa(i) + `}`)}); err != nil {
			fmt.Fprintln(os.Stderr, "publish:", err)
			os.Exit(2)
		}
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	if err := b.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "close:", err)
		os.Exit(2)
	}
}

// A DataDir is held by one process at a time: a second process is refused,
// told which directory and which process holds it, and nothing of the
// first one's is touched; with DataDirLockWait it takes over once the
// first has closed, as in a rolling deploy.
func TestBus_one_process_per_DataDir(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	dir := t.TempDir()
	holder := startChild(t, "TestDataDirHolderChild", dataDirChildEnv+"="+dir)
	holder.waitLine(t, "ready")
	pid := "process " + strconv.Itoa(holder.cmd.Process.Pid)

	_, err := bus.New(bus.Config{DataDir: dir})
	require.ErrorIs(t, err, bus.ErrDataDirLocked)
	assert.Contains(t, err.Error(), dir)
	assert.Contains(t, err.Error(), pid)
	// The journal alone, for direct users of replay.
	_, err = segments.Open(segments.Config{Dir: filepath.Join(dir, "journal")})
	require.ErrorIs(t, err, segments.ErrDirLocked)
	assert.Contains(t, err.Error(), pid)

	opened := make(chan *bus.Bus, 1)
	failed := make(chan error, 1)
	go func() {
		b, err := bus.New(bus.Config{DataDir: dir, DataDirLockWait: time.Minute})
		if err != nil {
			failed <- err
			return
		}
		opened <- b
	}()
	select {
	case <-opened:
		t.Fatal("opened while the other process holds the DataDir")
	case err := <-failed:
		t.Fatalf("gave up while waiting: %v", err)
	default:
	}
	require.NoError(t, holder.stdin.Close()) // the old process closes
	require.NoError(t, holder.wait(t, func(string) {}), "%s", &holder.stderr)
	var b *bus.Bus
	select {
	case b = <-opened:
	case err := <-failed:
		t.Fatal(err)
	case <-time.After(time.Minute):
		t.Fatal("did not take over the DataDir")
	}
	defer b.Close()
	var n int
	require.NoError(t, b.Events().Scan(ctx, time.Time{}, time.Time{}, func(replay.Record) bool {
		n++
		return true
	}))
	assert.Equal(t, dataDirEvents, n, "every event the first process published is there")
}

// damageObserver records the journal damage a bus reports.
type damageObserver struct {
	bus.NopObserver
	mu     sync.Mutex
	damage []segments.Damage
}

func (o *damageObserver) JournalDamaged(d segments.Damage) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.damage = append(o.damage, d)
}

// A torn tail cut off when the bus opens is never silent: without a logger
// it is logged through slog.Default(), and the Observer is told (the
// metrics count it).
func TestBus_journal_damage_is_logged_and_observed_without_a_logger(t *testing.T) {
	dir := t.TempDir()
	b, err := bus.New(bus.Config{DataDir: dir})
	require.NoError(t, err)
	require.NoError(t, b.Publish(ctx, bus.Event{Name: "order.created"}))
	require.NoError(t, b.Close())
	seg := filepath.Join(dir, "journal", bus.Topic, "00000000000000000001.seg")
	f, err := os.OpenFile(seg, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.Write([]byte{200, 0, 0, 0, 9, 9}) // a record cut short by a crash
	require.NoError(t, err)
	require.NoError(t, f.Close())

	var logged bytes.Buffer
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(slog.New(slog.NewTextHandler(&logged, nil)))
	obs := &damageObserver{}
	b, err = bus.New(bus.Config{DataDir: dir, Observer: obs})
	require.NoError(t, err)
	defer b.Close()
	assert.Contains(t, logged.String(), seg)
	assert.Contains(t, logged.String(), "bytes_cut=6")
	require.Len(t, obs.damage, 1)
	assert.Equal(t, segments.Damage{File: seg, Bytes: 6, Cut: true, Err: obs.damage[0].Err}, obs.damage[0])
}
