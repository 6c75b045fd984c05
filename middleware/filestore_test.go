package middleware_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/middleware"
)

// The directories of testID's log and rejected events.
const (
	rejectedDir = testID + ".rejected"
	logDir      = testID + ".log"
)

// segmentOf returns the one segment file the store in dir keeps in
// idDir, the integration's directory (its id and the store's suffix).
func segmentOf(t testing.TB, dir, idDir string) string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, idDir, "*.seg"))
	require.NoError(t, err)
	require.Len(t, files, 1)
	return files[0]
}

// storeBytes returns what the store in dir keeps on disk in idDir.
func storeBytes(t *testing.T, dir, idDir string) int64 {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, idDir, "*"))
	require.NoError(t, err)
	var n int64
	for _, f := range files {
		st, err := os.Stat(f)
		require.NoError(t, err)
		n += st.Size()
	}
	return n
}

// A rejection appends its own record: the file grows by about the event,
// not by everything kept, and is compacted before it holds more than about
// twice what is kept. 1 MiB payloads, 30 kept, 200 rejections.
func TestFileRejected_a_put_costs_its_own_size_and_the_file_stays_bounded(t *testing.T) {
	dir := t.TempDir()
	s, err := middleware.OpenFileRejected(dir, 0)
	require.NoError(t, err)
	defer s.Close()
	payload := json.RawMessage(`"` + string(bytes.Repeat([]byte{'x'}, 1<<20)) + `"`)
	put := func(i int) {
		e := rejectedEvent(fmt.Sprintf("e%03d", i))
		e.Payload = payload
		_, err := s.Put(testID, e)
		require.NoError(t, err)
	}
	for i := range 10 {
		before := storeBytes(t, dir, rejectedDir)
		put(i)
		grew := storeBytes(t, dir, rejectedDir) - before
		assert.InDelta(t, 1<<20, grew, 4<<10, "put %d wrote its own record only", i)
	}
	for i := 10; i < 200; i++ {
		put(i)
		// The 30 kept, at most a segment of evicted ones before them and
		// the one being filled: the others went as their events were
		// evicted.
		assert.LessOrEqual(t, storeBytes(t, dir, rejectedDir), int64(30+2*16+1)<<20, "old segments retired in time")
	}
	list, err := s.List(testID)
	require.NoError(t, err)
	require.Len(t, list, middleware.DefaultRejectedSize)
	assert.Equal(t, "e199", list[0].EventID)

	again, err := middleware.OpenFileRejected(dir, 0)
	require.NoError(t, err)
	defer again.Close()
	reloaded, err := again.List(testID)
	require.NoError(t, err)
	assert.Equal(t, list, reloaded, "the same after a reopen, compactions and evictions included")
}

// The log appends an entry, not the whole log, and stays bounded.
func TestFileLog_an_entry_costs_its_own_size_and_the_file_stays_bounded(t *testing.T) {
	dir := t.TempDir()
	l, err := middleware.OpenFileLog(dir, 0)
	require.NoError(t, err)
	defer l.Close()
	entry := func(i int) middleware.LogEntry {
		return middleware.LogEntry{Action: middleware.ActionRetryTriggered, Reason: fmt.Sprintf("try %d", i), CreatedAt: t0}
	}
	for i := range 10_000 {
		before := storeBytes(t, dir, logDir)
		require.NoError(t, l.Append(testID, entry(i)))
		if after := storeBytes(t, dir, logDir); after > before {
			assert.Less(t, after-before, int64(200), "entry %d: one record appended", i)
		}
	}
	assert.Less(t, storeBytes(t, dir, logDir), int64(200<<10), "compacted as it grows")
	again, err := middleware.OpenFileLog(dir, 0)
	require.NoError(t, err)
	defer again.Close()
	got, err := again.Entries(testID)
	require.NoError(t, err)
	require.Len(t, got, middleware.DefaultLogSize)
	assert.Equal(t, "try 9999", got[0].Reason)
	assert.Equal(t, "try 9950", got[49].Reason)
}

// A crash in the middle of a write leaves a torn last record: reopening
// cuts it off and keeps every record before it.
func TestFileStores_cut_a_torn_last_record(t *testing.T) {
	dir := t.TempDir()
	s, err := middleware.OpenFileRejected(dir, 0)
	require.NoError(t, err)
	for _, id := range []string{"e1", "e2", "e3"} {
		_, err := s.Put(testID, rejectedEvent(id))
		require.NoError(t, err)
	}
	require.NoError(t, s.Close())
	path := segmentOf(t, dir, rejectedDir)
	whole, err := os.ReadFile(path)
	require.NoError(t, err)
	first := fileSizeAfter(t, 1)
	for cut := first + 1; cut < int64(len(whole)); cut += 7 {
		require.NoError(t, os.WriteFile(path, whole[:cut], 0o600))
		again, err := middleware.OpenFileRejected(dir, 0)
		require.NoError(t, err, "cut at %d", cut)
		list, err := again.List(testID)
		require.NoError(t, err)
		assert.NotEmpty(t, list, "cut at %d: the first record stays", cut)
		assert.Equal(t, "e1", list[len(list)-1].EventID)
		_, err = again.Put(testID, rejectedEvent("e4")) // appends after the cut
		require.NoError(t, err)
		require.NoError(t, again.Close())
		reopened, err := middleware.OpenFileRejected(dir, 0)
		require.NoError(t, err)
		list, err = reopened.List(testID)
		require.NoError(t, err)
		assert.Equal(t, "e4", list[0].EventID, "cut at %d: a record written after the cut is read back", cut)
		require.NoError(t, reopened.Close())
	}
}

// fileSizeAfter returns the size of the segment of a store in a scratch
// directory after n puts.
func fileSizeAfter(t *testing.T, n int) int64 {
	scratch := t.TempDir()
	s, err := middleware.OpenFileRejected(scratch, 0)
	require.NoError(t, err)
	defer s.Close()
	for i := range n {
		_, err := s.Put(testID, rejectedEvent(fmt.Sprintf("e%d", i+1)))
		require.NoError(t, err)
	}
	return storeBytes(t, scratch, rejectedDir)
}

// Stores written in the former format (one JSON document per integration)
// load, and are converted.
func TestFileStores_read_and_convert_the_former_documents(t *testing.T) {
	rejectedDir, logDir := t.TempDir(), t.TempDir()
	events := []middleware.RejectedEvent{rejectedEvent("e2"), rejectedEvent("e1")} // newest first
	doc, err := json.Marshal(map[string]any{"integration_id": testID, "rejected_events": events})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(rejectedDir, "erp-1.rejected.json"), doc, 0o600))
	entries := []middleware.LogEntry{{Action: "b", CreatedAt: t0}, {Action: "a", CreatedAt: t0}}
	doc, err = json.Marshal(map[string]any{"integration_id": testID, "entries": entries})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(logDir, "erp-1.log.json"), doc, 0o600))

	for range 2 { // converted, then read in the new format
		s, err := middleware.OpenFileRejected(rejectedDir, 0)
		require.NoError(t, err)
		list, err := s.List(testID)
		require.NoError(t, err)
		assert.Equal(t, events, list)
		require.NoError(t, s.Close())
		l, err := middleware.OpenFileLog(logDir, 0)
		require.NoError(t, err)
		got, err := l.Entries(testID)
		require.NoError(t, err)
		assert.Equal(t, entries, got)
		require.NoError(t, l.Close())
	}
	assert.NoFileExists(t, filepath.Join(rejectedDir, "erp-1.rejected.json"))
	assert.NoFileExists(t, filepath.Join(logDir, "erp-1.log.json"))
}

// Concurrent rejections of one integration and of others all land, once.
func TestFileRejected_concurrent_puts(t *testing.T) {
	dir := t.TempDir()
	s, err := middleware.OpenFileRejected(dir, 1000)
	require.NoError(t, err)
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				_, err := s.Put(fmt.Sprintf("int-%d", w%4), rejectedEvent(fmt.Sprintf("w%d-%d", w, i)))
				assert.NoError(t, err)
			}
		}()
	}
	wg.Wait()
	require.NoError(t, s.Close())
	again, err := middleware.OpenFileRejected(dir, 1000)
	require.NoError(t, err)
	defer again.Close()
	for i := range 4 {
		list, err := again.List(fmt.Sprintf("int-%d", i))
		require.NoError(t, err)
		assert.Len(t, list, 4*20)
	}
}

// FuzzFileStores: whatever a store's file holds, opening it never panics,
// and what opens keeps working.
func FuzzFileStores(f *testing.F) {
	for _, n := range []int{0, 1, 3} {
		dir := f.TempDir()
		s, err := middleware.OpenFileRejected(dir, 2)
		require.NoError(f, err)
		for i := range n {
			_, err := s.Put(testID, rejectedEvent(fmt.Sprintf("e%d", i)))
			require.NoError(f, err)
		}
		if n > 0 {
			require.NoError(f, s.Delete(testID, fmt.Sprintf("e%d", n-1)))
			data, err := os.ReadFile(segmentOf(f, dir, rejectedDir))
			require.NoError(f, err)
			f.Add(data)
			f.Add(data[:len(data)/2])
		}
		require.NoError(f, s.Close())
	}
	f.Add([]byte{3, 0, 0, 0, 0, 0, 0, 0, '{', '}', '\n'})
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		for _, d := range []string{rejectedDir, logDir} {
			require.NoError(t, os.MkdirAll(filepath.Join(dir, d), 0o700))
			require.NoError(t, os.WriteFile(filepath.Join(dir, d, "00000000000000000001.seg"), data, 0o600))
		}
		if s, err := middleware.OpenFileRejected(dir, 2); err == nil {
			_, err := s.Put(testID, rejectedEvent("new"))
			require.NoError(t, err)
			list, err := s.List(testID)
			require.NoError(t, err)
			require.Equal(t, "new", list[0].EventID)
			require.NoError(t, s.Close())
		}
		if l, err := middleware.OpenFileLog(dir, 2); err == nil {
			require.NoError(t, l.Append(testID, middleware.LogEntry{Action: "x"}))
			require.NoError(t, l.Close())
		}
	})
}

// Segments whose records are sound frames but do not decode (written by
// something else) are set aside with their integration's directory, and
// the store opens.
func TestFileStores_set_aside_segments_that_do_not_decode(t *testing.T) {
	dir := t.TempDir()
	body := []byte("not a record")
	frame := binary.LittleEndian.AppendUint32(nil, uint32(len(body)))
	frame = binary.LittleEndian.AppendUint32(frame, crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)))
	frame = append(frame, body...)
	for _, d := range []string{"x.rejected", "x.log"} {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, d), 0o700))
		require.NoError(t, os.WriteFile(filepath.Join(dir, d, "00000000000000000001.seg"), frame, 0o600))
	}
	s, err := middleware.OpenFileRejected(dir, 0)
	require.NoError(t, err)
	defer s.Close()
	require.Len(t, s.Unreadable(), 1)
	assert.ErrorContains(t, s.Unreadable()[0], "x.rejected")
	assert.DirExists(t, filepath.Join(dir, "x.rejected"+middleware.UnreadableSuffix))
	l, err := middleware.OpenFileLog(dir, 0)
	require.NoError(t, err)
	defer l.Close()
	require.Len(t, l.Unreadable(), 1)
	assert.DirExists(t, filepath.Join(dir, "x.log"+middleware.UnreadableSuffix))
	_, err = s.Put("x", rejectedEvent("e1"))
	require.NoError(t, err, "the integration starts afresh")
}
