package segments_test

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/replay"
	"github.com/sinkbus/sinkbus/replay/segments"
	"github.com/sinkbus/sinkbus/replay/storagetest"
)

// errorsLogged returns the Error entries of logger naming file.
func errorsLogged(logger *watermill.CaptureLoggerAdapter, file string) []watermill.CapturedMessage {
	var out []watermill.CapturedMessage
	for _, m := range logger.Captured()[watermill.ErrorLogLevel] {
		if m.Fields["file"] == file {
			out = append(out, m)
		}
	}
	return out
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	require.NoError(t, os.CopyFS(dst, os.DirFS(src)))
}

func TestSegments_recovery_cuts_a_torn_tail_at_every_byte(t *testing.T) {
	src := t.TempDir()
	clk := storagetest.NewStepClock(time.Second)
	s := openSegs(t, segments.Config{Dir: src})
	want := storagetest.AppendN(t, s, "orders", 1, 4, clk.Now)
	require.NoError(t, s.Close())
	seg := filepath.Join("orders", "00000000000000000001.seg")
	complete, err := os.ReadFile(filepath.Join(src, seg))
	require.NoError(t, err)
	s = openSegs(t, segments.Config{Dir: src})
	last := storagetest.AppendN(t, s, "orders", 5, 1, clk.Now)
	require.NoError(t, s.Close())
	withLast, err := os.ReadFile(filepath.Join(src, seg))
	require.NoError(t, err)
	require.Greater(t, len(withLast), len(complete)+20)

	garbage := map[string][]byte{
		"nothing": nil,
		"zeros":   make([]byte, 16),
		"ones":    bytes.Repeat([]byte{0xff}, 9),
		"random":  []byte("\x13\x37\xde\xad\xbe\xef\x00\x01\x02garbage after the crash"),
		// A header announcing a frame longer than the file.
		"long frame": {0x00, 0x10, 0x00, 0x00, 1, 2, 3, 4, 5},
	}
	for cut := len(complete); cut <= len(withLast); cut++ {
		for name, junk := range garbage {
			whole := cut == len(withLast)
			t.Run(fmt.Sprintf("at_%d_%s", cut, strings.ReplaceAll(name, " ", "_")), func(t *testing.T) {
				dir := t.TempDir()
				copyDir(t, src, dir)
				file := filepath.Join(dir, seg)
				data := append(append([]byte(nil), withLast[:cut]...), junk...)
				require.NoError(t, os.WriteFile(file, data, 0o644))

				logger := watermill.NewCaptureLogger()
				s := openSegs(t, segments.Config{Dir: dir, Logger: logger})
				kept := want
				if whole {
					kept = append(append([]replay.Record(nil), want...), last...)
				}
				storagetest.AssertSameRecords(t, kept, storagetest.ReadAll(t, s, "orders"))
				_, next := s.Bounds("orders")
				assert.Equal(t, uint64(len(kept)+1), next)

				cutBytes := int64(len(data) - len(complete))
				if whole {
					cutBytes = int64(len(junk))
				}
				logged := errorsLogged(logger, file)
				if zeros := bytes.Count(data[int64(len(data))-cutBytes:], []byte{0}); int64(zeros) == cutBytes {
					// Nothing, or zeros alone: what a preallocated
					// segment holds past its records is no damage.
					assert.Empty(t, logged)
				} else if assert.Len(t, logged, 1) {
					assert.Equal(t, cutBytes, logged[0].Fields["bytes_cut"])
				}
				info, err := os.Stat(file)
				require.NoError(t, err)
				assert.Equal(t, int64(len(data))-cutBytes, info.Size(), "the file is truncated")

				more := storagetest.AppendN(t, s, "orders", 9, 1, clk.Now)
				assert.Equal(t, next, more[0].Offset, "appends continue with the next offset")
				require.NoError(t, s.Close())
				s = openSegs(t, segments.Config{Dir: dir})
				storagetest.AssertSameRecords(t, append(kept, more...), storagetest.ReadAll(t, s, "orders"))
			})
		}
	}
}

func TestSegments_corrupt_older_segment_is_read_up_to_the_damage(t *testing.T) {
	dir := t.TempDir()
	cfg := segments.Config{Dir: dir, SegmentBytes: 400, TailCacheBytes: -1}
	clk := storagetest.NewStepClock(time.Second)
	s := openSegs(t, cfg)
	want := storagetest.AppendN(t, s, "orders", 1, 30, clk.Now)
	require.NoError(t, s.Close())
	files, err := filepath.Glob(filepath.Join(dir, "orders", "*.seg"))
	require.NoError(t, err)
	require.Greater(t, len(files), 3)

	// Flip a byte in the payload of the third record of the second segment.
	second := files[1]
	base, err := strconv.ParseUint(strings.TrimSuffix(filepath.Base(second), ".seg"), 10, 64)
	require.NoError(t, err)
	data, err := os.ReadFile(second)
	require.NoError(t, err)
	bad := bytes.Index(data, want[base+1].Payload)
	require.Positive(t, bad)
	data[bad+3] ^= 0x40
	require.NoError(t, os.WriteFile(second, data, 0o644))

	logger := watermill.NewCaptureLogger()
	s = openSegs(t, segments.Config{Dir: dir, SegmentBytes: 400, TailCacheBytes: -1, Logger: logger})
	got := storagetest.ReadAll(t, s, "orders")
	var expect []replay.Record
	for _, r := range want {
		if r.Offset < base+2 || r.Offset >= nextBase(t, files, 1) {
			expect = append(expect, r)
		}
	}
	storagetest.AssertSameRecords(t, expect, got)
	assert.Len(t, errorsLogged(logger, second), 1, "the damage is logged once, naming the file")
	after, err := os.ReadFile(second)
	require.NoError(t, err)
	assert.Equal(t, data, after, "an older segment is left as it is")

	// Seek and Trim still work around the damage.
	off, err := s.Seek("orders", want[base+1].Time)
	require.NoError(t, err)
	assert.Equal(t, nextBase(t, files, 1), off)
	_, err = s.Trim(want[len(want)-1].Time)
	require.NoError(t, err)
}

func nextBase(t *testing.T, files []string, i int) uint64 {
	t.Helper()
	b, err := strconv.ParseUint(strings.TrimSuffix(filepath.Base(files[i+1]), ".seg"), 10, 64)
	require.NoError(t, err)
	return b
}

// killPayload is the content of writer w's record n: long enough to cross
// page boundaries, and checkable.
func killPayload(w, n int) []byte {
	return []byte(fmt.Sprintf("%d/%d/%s", w, n, strings.Repeat(strconv.Itoa(w), 100+(n*37)%3000)))
}

const killChildEnv = "SINKBUS_SEGMENTS_KILL_CHILD_DIR"

// The segment being written is filled with zeros ahead of its records, so
// that a group commit's fsync has no file size to persist: a crash leaves
// those zeros, which are no damage. A copy of the directory taken while the
// storage is open is what a power cut leaves behind once every append
// returned.
func TestSegments_zeros_ahead_of_the_records_are_cut_silently(t *testing.T) {
	src := t.TempDir()
	clk := storagetest.NewStepClock(time.Second)
	s := openSegs(t, segments.Config{Dir: src})
	want := storagetest.AppendN(t, s, "orders", 1, 20, clk.Now)
	file := filepath.Join("orders", "00000000000000000001.seg")
	info, err := os.Stat(filepath.Join(src, file))
	require.NoError(t, err)
	require.GreaterOrEqual(t, info.Size(), int64(1<<20), "the segment being written is preallocated")

	crashed := t.TempDir()
	copyDir(t, src, crashed)
	require.NoError(t, s.Close())
	closed, err := os.Stat(filepath.Join(src, file))
	require.NoError(t, err)
	assert.Less(t, closed.Size(), int64(20<<10), "Close cuts the zeros off")

	logger := watermill.NewCaptureLogger()
	s = openSegs(t, segments.Config{Dir: crashed, Logger: logger})
	storagetest.AssertSameRecords(t, want, storagetest.ReadAll(t, s, "orders"))
	assert.Empty(t, logger.Captured()[watermill.ErrorLogLevel], "zeros are no damage")
	recovered, err := os.Stat(filepath.Join(crashed, file))
	require.NoError(t, err)
	assert.Equal(t, closed.Size(), recovered.Size(), "recovery cuts them off")
	more := storagetest.AppendN(t, s, "orders", 21, 5, clk.Now)
	assert.Equal(t, uint64(21), more[0].Offset)
	require.NoError(t, s.Close())
	s = openSegs(t, segments.Config{Dir: crashed})
	storagetest.AssertSameRecords(t, append(want, more...), storagetest.ReadAll(t, s, "orders"))
}

// A segment sealed at SegmentBytes is cut to its records before the next
// one starts: only the newest segment can hold zeros.
func TestSegments_sealed_segments_hold_no_zeros(t *testing.T) {
	dir := t.TempDir()
	s := openSegs(t, segments.Config{Dir: dir, SegmentBytes: 4 << 10})
	storagetest.AppendN(t, s, "orders", 1, 200, storagetest.NewStepClock(time.Second).Now)
	entries, err := os.ReadDir(filepath.Join(dir, "orders"))
	require.NoError(t, err)
	var sealed int
	for _, e := range entries[:len(entries)-1] {
		data, err := os.ReadFile(filepath.Join(dir, "orders", e.Name()))
		require.NoError(t, err)
		require.NotEmpty(t, data)
		assert.NotZero(t, data[len(data)-1], "%s ends with its last record's payload", e.Name())
		assert.Less(t, len(data), 8<<10, "%s holds its records alone", e.Name())
		sealed++
	}
	assert.Greater(t, sealed, 2)
}

// TestSegmentsHelperProcess is the child of the kill test: it appends until
// killed, printing "ack offset writer n" for every acknowledged record.
func TestSegmentsHelperProcess(t *testing.T) {
	dir := os.Getenv(killChildEnv)
	if dir == "" {
		t.Skip("child process of TestSegments_acknowledged_records_survive_kill")
	}
	s, err := segments.Open(segments.Config{Dir: dir, SegmentBytes: 64 << 10})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	round := os.Getenv(killChildEnv + "_ROUND")
	var out sync.Mutex
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < 1_000_000; n++ {
				rec := &replay.Record{
					UUID:     fmt.Sprintf("r%s-w%d-n%d", round, w, n),
					Metadata: map[string]string{"w": strconv.Itoa(w)},
					Payload:  killPayload(w, n),
				}
				if err := s.Append("kill", []*replay.Record{rec}, time.Now); err != nil {
					fmt.Println("append:", err)
					os.Exit(2)
				}
				out.Lock()
				fmt.Printf("ack %d %s\n", rec.Offset, rec.UUID)
				out.Unlock()
			}
		}()
	}
	wg.Wait()
	os.Exit(0)
}

func TestSegments_acknowledged_records_survive_kill(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	dir := t.TempDir()
	acked := make(map[uint64]string) // offset -> uuid
	for round := range 3 {
		killAfter := 100 + rand.IntN(1500)
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestSegmentsHelperProcess$")
		cmd.Env = append(os.Environ(), killChildEnv+"="+dir, fmt.Sprintf("%s_ROUND=%d", killChildEnv, round))
		stdout, err := cmd.StdoutPipe()
		require.NoError(t, err)
		cmd.Stderr = os.Stderr
		require.NoError(t, cmd.Start())
		lines := bufio.NewScanner(stdout)
		seen := 0
		for lines.Scan() {
			var off uint64
			var uuid string
			if _, err := fmt.Sscanf(lines.Text(), "ack %d %s", &off, &uuid); err != nil {
				t.Fatalf("child: %s", lines.Text())
			}
			if _, twice := acked[off]; twice {
				t.Fatalf("offset %d acknowledged twice", off)
			}
			acked[off] = uuid
			if seen++; seen == killAfter {
				require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
			}
		}
		err = cmd.Wait()
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit)
		require.Equal(t, "signal: killed", exit.Error(), "the child must die by the kill, not on its own")

		s, err := segments.Open(segments.Config{Dir: dir, SegmentBytes: 64 << 10})
		require.NoError(t, err)
		first, next := s.Bounds("kill")
		require.Equal(t, uint64(1), first)
		all := storagetest.ReadAll(t, s, "kill")
		require.Len(t, all, int(next-1), "offsets are dense")
		for i, r := range all {
			require.Equal(t, uint64(i+1), r.Offset)
			var rr, w, n int
			_, err := fmt.Sscanf(r.UUID, "r%d-w%d-n%d", &rr, &w, &n)
			require.NoError(t, err, r.UUID)
			require.Equal(t, string(killPayload(w, n)), string(r.Payload), "record %d is intact", r.Offset)
			require.Equal(t, strconv.Itoa(w), r.Metadata["w"])
			if uuid, ok := acked[r.Offset]; ok {
				require.Equal(t, uuid, r.UUID)
			}
		}
		for off := range acked {
			require.Less(t, off, next, "acknowledged record %d lost", off)
		}
		t.Logf("round %d: killed after %d acks, %d records kept, %d acknowledged in all", round, seen, len(all), len(acked))
		require.NoError(t, s.Close())
	}
}
