package file_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/field"
	"github.com/sinkbus/sinkbus/internal/clock"
	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/file"
)

var exportName = regexp.MustCompile(`^\d{13}-data-[a-z0-9]+\.export$`)

func event(id, tenant string, payload string) *message.Message {
	msg := message.NewMessage(id, []byte(payload))
	msg.Metadata.Set(sinks.MetaName, "order.fulfilled")
	msg.Metadata.Set(sinks.MetaPublishedAt, "2026-01-01T00:00:00Z")
	if tenant != "" {
		msg.Metadata.Set(sinks.MetaTenant, tenant)
	}
	return msg
}

// harness is a file sink on a fake clock, with its finished files on a channel.
type harness struct {
	sink     *file.Publisher
	clk      *clock.Fake
	dir      string
	finished chan string
}

func newHarness(t *testing.T, cfg file.Config) *harness {
	t.Helper()
	h := &harness{clk: clock.NewFake(time.Time{}), finished: make(chan string, 1024)}
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	h.dir = cfg.Dir
	cfg.OnFinalized = func(path string) { h.finished <- path }
	sink, err := file.New(cfg, sinks.Env{IntegrationID: "erp-1", Clock: h.clk})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sink.Close() })
	h.sink = sink
	return h
}

// waitFinished returns the next file OnFinalized reports.
func (h *harness) waitFinished(t *testing.T) string {
	t.Helper()
	select {
	case path := <-h.finished:
		return path
	case <-time.After(10 * time.Second):
		t.Fatal("no file was finished")
		return ""
	}
}

// exportFile is a finished or open file and its lines.
type exportFile struct {
	rel   string // relative to the sink's dir, slash-separated
	tmp   bool
	size  int64
	lines []sinks.Envelope
}

// readExports reads every file under dir but the sink's lock file; it
// fails on a line that is not a whole envelope.
func readExports(t *testing.T, dir string) []exportFile {
	t.Helper()
	var out []exportFile
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path == filepath.Join(dir, file.LockName) {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		require.NoError(t, err)
		ef := exportFile{rel: filepath.ToSlash(rel), tmp: strings.HasSuffix(path, ".tmp")}
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		ef.size = int64(len(data))
		if !ef.tmp {
			require.True(t, len(data) > 0 && data[len(data)-1] == '\n', "%s does not end with a newline", rel)
		}
		for _, line := range strings.SplitAfter(string(data), "\n") {
			if line == "" {
				continue
			}
			require.True(t, strings.HasSuffix(line, "\n"), "%s has a half line", rel)
			var e sinks.Envelope
			require.NoError(t, json.Unmarshal([]byte(line), &e), "%s: %q", rel, line)
			ef.lines = append(ef.lines, e)
		}
		out = append(out, ef)
		return nil
	})
	require.NoError(t, err)
	sort.Slice(out, func(i, j int) bool { return out[i].rel < out[j].rel })
	return out
}

// countIDs returns how many times each event id appears in files.
func countIDs(files []exportFile) map[string]int {
	ids := make(map[string]int)
	for _, f := range files {
		for _, e := range f.lines {
			ids[e.ID]++
		}
	}
	return ids
}

func TestFileSink_names_files_by_prefix_tenant_and_time(t *testing.T) {
	h := newHarness(t, file.Config{KeyPrefix: "newstore/erp"})
	require.NoError(t, h.sink.Publish("t", event("e1", "acme", `{"n":1}`)))
	require.NoError(t, h.sink.Publish("t", event("e2", "", `{"n":2}`)))
	require.NoError(t, h.sink.Publish("t", event("e3", "eu/../x", `{"n":3}`)))
	require.NoError(t, h.sink.Publish("t", event("e4", "acme", `{"n":4}`)))

	open := readExports(t, h.dir)
	require.Len(t, open, 3)
	for _, f := range open {
		assert.True(t, f.tmp, "%s is visible before it is finished", f.rel)
	}

	require.NoError(t, h.sink.Close())
	files := readExports(t, h.dir)
	require.Len(t, files, 3)
	byTenant := map[string]exportFile{}
	for _, f := range files {
		assert.False(t, f.tmp)
		parts := strings.Split(f.rel, "/")
		require.Len(t, parts, 4, f.rel)
		assert.Equal(t, "newstore/erp", parts[0]+"/"+parts[1])
		assert.Regexp(t, exportName, parts[3])
		assert.True(t, strings.HasPrefix(parts[3], fmt.Sprint(h.clk.Now().UnixMilli())), parts[3])
		byTenant[parts[2]] = f
	}
	require.Contains(t, byTenant, "acme")
	require.Contains(t, byTenant, "default")
	require.Contains(t, byTenant, "eu%2F..%2Fx")
	assert.Equal(t, []string{"e1", "e4"}, []string{byTenant["acme"].lines[0].ID, byTenant["acme"].lines[1].ID})
	assert.Equal(t, "acme", byTenant["acme"].lines[0].Tenant)
	assert.JSONEq(t, `{"n":4}`, string(byTenant["acme"].lines[1].Payload))
	assert.Equal(t, "e2", byTenant["default"].lines[0].ID)
	assert.Equal(t, "eu/../x", byTenant["eu%2F..%2Fx"].lines[0].Tenant)

	// Close is idempotent, and the sink refuses events afterwards.
	require.NoError(t, h.sink.Close())
	assert.ErrorIs(t, h.sink.Publish("t", event("e5", "acme", `{}`)), sinks.ErrClosed)
}

func TestFileSink_rotates_by_size(t *testing.T) {
	line := len(sinks.AppendEnvelope(nil, event("e00", "acme", `{"pad":"xxxxxxxxxx"}`))) + 1
	h := newHarness(t, file.Config{RotateBytes: int64(3 * line)})

	for i := range 7 {
		require.NoError(t, h.sink.Publish("t", event(fmt.Sprintf("e%02d", i), "acme", `{"pad":"xxxxxxxxxx"}`)))
	}
	// Three lines fill a file exactly: it is finished at once, without waiting for the next event.
	require.Len(t, h.finished, 2)

	big := event("big", "acme", `{"pad":"`+strings.Repeat("y", 5*line)+`"}`)
	require.NoError(t, h.sink.Publish("t", big))
	require.NoError(t, h.sink.Publish("t", event("e07", "acme", `{"pad":"xxxxxxxxxx"}`)))
	require.NoError(t, h.sink.Close())

	files := readExports(t, h.dir)
	var sizes []int
	for _, f := range files {
		assert.False(t, f.tmp)
		var ids []string
		for _, e := range f.lines {
			ids = append(ids, e.ID)
		}
		if ids[0] == "big" {
			assert.Equal(t, []string{"big"}, ids, "an event larger than rotate_bytes gets a file of its own")
			continue
		}
		assert.LessOrEqual(t, f.size, int64(3*line))
		sizes = append(sizes, len(ids))
	}
	assert.ElementsMatch(t, []int{3, 3, 1, 1}, sizes)
	ids := countIDs(files)
	assert.Len(t, ids, 9)
	for id, n := range ids {
		assert.Equal(t, 1, n, id)
	}
}

func TestFileSink_finishes_an_idle_file_when_it_is_due(t *testing.T) {
	h := newHarness(t, file.Config{RotateEvery: sinks.Duration(time.Minute)})
	start := h.clk.Now()
	require.NoError(t, h.sink.Publish("t", event("e1", "acme", `{}`)))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, h.clk.BlockUntil(ctx, 1))
	h.clk.Advance(59 * time.Second)
	select {
	case path := <-h.finished:
		t.Fatalf("%s finished before it was due", path)
	default:
	}
	h.clk.Advance(time.Second)
	path := h.waitFinished(t)
	assert.Equal(t, fmt.Sprintf("%d", start.UnixMilli()), strings.SplitN(filepath.Base(path), "-", 2)[0])
	files := readExports(t, h.dir)
	require.Len(t, files, 1)
	assert.False(t, files[0].tmp)

	// The next event starts a file named after the new time.
	require.NoError(t, h.sink.Publish("t", event("e2", "acme", `{}`)))
	require.NoError(t, h.sink.Close())
	second := h.waitFinished(t)
	assert.Equal(t, fmt.Sprintf("%d", start.Add(time.Minute).UnixMilli()), strings.SplitN(filepath.Base(second), "-", 2)[0])
}

func TestFileSink_rotates_a_due_file_on_write(t *testing.T) {
	h := newHarness(t, file.Config{RotateEvery: sinks.Duration(time.Minute)})
	require.NoError(t, h.sink.Publish("t", event("e1", "acme", `{}`)))
	// Whether the timer or the write gets there first, an event after the
	// due time goes to a new file.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, h.clk.BlockUntil(ctx, 1))
	h.clk.Advance(2 * time.Minute)
	require.NoError(t, h.sink.Publish("t", event("e2", "acme", `{}`)))
	first := h.waitFinished(t)
	require.NoError(t, h.sink.Close())
	second := h.waitFinished(t)
	assert.NotEqual(t, first, second)
	files := readExports(t, h.dir)
	require.Len(t, files, 2)
	assert.Equal(t, "e1", files[0].lines[0].ID)
	assert.Equal(t, "e2", files[1].lines[0].ID)
}

func TestFileSink_concurrent_tenants_under_every_fsync_policy(t *testing.T) {
	for _, policy := range []file.Fsync{file.FsyncRotation, file.FsyncBatch, file.FsyncEvent} {
		t.Run(string(policy), func(t *testing.T) {
			h := newHarness(t, file.Config{Fsync: policy, RotateBytes: 4096})
			const workers, perWorker = 8, 60
			var wg sync.WaitGroup
			errs := make(chan error, workers*perWorker)
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range perWorker {
						tenant := fmt.Sprintf("tenant-%d", (w+i)%4)
						errs <- h.sink.Publish("t", event(fmt.Sprintf("w%d-%d", w, i), tenant, `{"i":1}`))
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
			require.NoError(t, h.sink.Close())

			files := readExports(t, h.dir)
			assert.Greater(t, len(files), 4, "small rotate_bytes must give several files per tenant")
			for _, f := range files {
				assert.False(t, f.tmp)
				assert.LessOrEqual(t, f.size, int64(4096))
				dirTenant := strings.Split(f.rel, "/")[0]
				for _, e := range f.lines {
					assert.Equal(t, dirTenant, e.Tenant, "event %s in the wrong tenant's file", e.ID)
				}
			}
			ids := countIDs(files)
			assert.Len(t, ids, workers*perWorker)
			for id, n := range ids {
				assert.Equal(t, 1, n, id)
			}
		})
	}
}

func TestFileSink_write_errors_are_retryable_and_logged(t *testing.T) {
	dir := t.TempDir()
	logs := watermill.NewCaptureLogger()
	sink, err := file.New(file.Config{Dir: dir}, sinks.Env{IntegrationID: "erp-1", Logger: logs})
	require.NoError(t, err)
	defer sink.Close()
	// A regular file where the tenant directory should be: every write fails
	// until it is gone. It stands for a read-only or full disk, which root,
	// running the tests in CI, cannot make (it ignores permission bits).
	blocker := filepath.Join(dir, "acme")
	require.NoError(t, os.WriteFile(blocker, []byte("x"), 0o644))

	err = sink.Publish("t", event("e1", "acme", `{}`))
	require.Error(t, err)
	class, _ := sinks.Classify(err)
	assert.Equal(t, sinks.ClassRetryable, class)
	var pathErr *fs.PathError
	assert.ErrorAs(t, err, &pathErr, "the OS error stays reachable")
	errorLogs := logs.Captured()[watermill.ErrorLogLevel]
	require.Len(t, errorLogs, 1)
	assert.Equal(t, "e1", errorLogs[0].Fields["event_id"])
	assert.ErrorIs(t, errorLogs[0].Err, pathErr)

	require.NoError(t, os.Remove(blocker))
	require.NoError(t, sink.Publish("t", event("e1", "acme", `{}`)))
	require.NoError(t, sink.Close())
	assert.Equal(t, map[string]int{"e1": 1}, countIDs(readExports(t, dir)))
}

func TestFileSink_one_sink_per_directory(t *testing.T) {
	dir := t.TempDir()
	first, err := file.New(file.Config{Dir: dir}, sinks.Env{IntegrationID: "erp-1"})
	require.NoError(t, err)
	require.NoError(t, first.Publish("t", event("e1", "acme", `{}`)))

	// A second sink would "recover" the first one's open file under it.
	_, err = file.New(file.Config{Dir: dir, KeyPrefix: "other"}, sinks.Env{IntegrationID: "erp-2"})
	var fe *field.Error
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, "dir", fe.Field)
	assert.Contains(t, fe.Rule, "in use by another sink")
	_, err = file.LockDir(dir)
	assert.ErrorIs(t, err, file.ErrDirInUse)

	require.NoError(t, first.Publish("t", event("e2", "acme", `{}`)))
	require.NoError(t, first.Close())
	files := readExports(t, dir)
	require.Len(t, files, 1, "the first sink's file was left alone")
	assert.False(t, files[0].tmp)
	assert.Equal(t, map[string]int{"e1": 1, "e2": 1}, countIDs(files))

	// Close released the directory.
	second, err := file.New(file.Config{Dir: dir}, sinks.Env{IntegrationID: "erp-2"})
	require.NoError(t, err)
	require.NoError(t, second.Close())
}

func TestFileSink_uses_a_lock_its_caller_holds(t *testing.T) {
	dir := t.TempDir()
	lock, err := file.LockDir(dir)
	require.NoError(t, err)
	defer lock.Unlock()

	_, err = file.New(file.Config{Dir: t.TempDir(), Lock: lock}, sinks.Env{})
	require.Error(t, err, "a lock on another directory")

	sink, err := file.New(file.Config{Dir: dir, Lock: lock}, sinks.Env{})
	require.NoError(t, err)
	require.NoError(t, sink.Close())
	_, err = file.LockDir(dir)
	assert.ErrorIs(t, err, file.ErrDirInUse, "Close leaves the caller's lock held")

	require.NoError(t, lock.Unlock())
	require.NoError(t, lock.Unlock(), "Unlock is idempotent")
	again, err := file.LockDir(dir)
	require.NoError(t, err)
	require.NoError(t, again.Unlock())
}

func TestRemoveFiles_removes_only_export_files(t *testing.T) {
	dir := t.TempDir()
	sink, err := file.New(file.Config{Dir: dir, KeyPrefix: "kp"}, sinks.Env{})
	require.NoError(t, err)
	require.NoError(t, sink.Publish("t", event("e1", "acme", `{}`)))
	require.NoError(t, sink.Publish("t", event("e2", "globex", `{}`)))
	_, err = file.RemoveFiles(dir)
	assert.ErrorIs(t, err, file.ErrDirInUse, "not while a sink uses the directory")
	require.NoError(t, sink.Close())

	open := filepath.Join(dir, "kp", "acme", "1767225600000-data-00000000000000aa.export.tmp")
	require.NoError(t, os.WriteFile(open, []byte("{}\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "kp", "globex", "notes.txt"), []byte("mine"), 0o644))

	n, err := file.RemoveFiles(dir)
	require.NoError(t, err)
	assert.Equal(t, 3, n, "two finished files and one temporary")
	var left []string
	require.NoError(t, filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, path)
			left = append(left, filepath.ToSlash(rel))
		}
		return err
	}))
	assert.ElementsMatch(t, []string{file.LockName, "kp/globex/notes.txt"}, left, "files the sink did not write stay")
	assert.NoDirExists(t, filepath.Join(dir, "kp", "acme"), "emptied directories go")

	n, err = file.RemoveFiles(filepath.Join(dir, "missing"))
	require.NoError(t, err)
	assert.Zero(t, n)
}

func TestFileSink_completes_leftover_temporary_files(t *testing.T) {
	dir := t.TempDir()
	tenantDir := filepath.Join(dir, "kp", "acme")
	require.NoError(t, os.MkdirAll(tenantDir, 0o755))
	whole := string(sinks.AppendEnvelope(nil, event("e1", "acme", `{}`))) + "\n" +
		string(sinks.AppendEnvelope(nil, event("e2", "acme", `{}`))) + "\n"
	half := `{"id":"e3","name":"order.fu`
	withHalf := filepath.Join(tenantDir, "1767225600000-data-00000000000000aa.export.tmp")
	require.NoError(t, os.WriteFile(withHalf, []byte(whole+half), 0o644))
	onlyHalf := filepath.Join(tenantDir, "1767225600001-data-00000000000000bb.export.tmp")
	require.NoError(t, os.WriteFile(onlyHalf, []byte(half), 0o644))
	unrelated := filepath.Join(tenantDir, "notes.tmp")
	require.NoError(t, os.WriteFile(unrelated, []byte(half), 0o644))

	h := newHarness(t, file.Config{Dir: dir, KeyPrefix: "kp"})
	path := h.waitFinished(t)
	assert.Equal(t, strings.TrimSuffix(withHalf, ".tmp"), path)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, whole, string(data))
	assert.NoFileExists(t, withHalf)
	assert.NoFileExists(t, onlyHalf, "a file without a whole line is removed")
	assert.FileExists(t, unrelated, "files the sink did not write are left alone")
	select {
	case p := <-h.finished:
		t.Fatalf("unexpected finished file %s", p)
	default:
	}
}

func TestConfig_validate_names_each_field(t *testing.T) {
	tests := []struct {
		name string
		cfg  file.Config
		want []string
	}{
		{"zero", file.Config{}, nil},
		{"full", file.Config{Dir: "/x", KeyPrefix: "a/b-c_d.e", RotateEvery: sinks.Duration(time.Minute), RotateBytes: 1, Fsync: file.FsyncBatch}, nil},
		{"negative", file.Config{RotateEvery: -1, RotateBytes: -1}, []string{"rotate_every: must not be negative", "rotate_bytes: must not be negative"}},
		{"too short", file.Config{RotateEvery: sinks.Duration(time.Millisecond)}, []string{"rotate_every: must be at least 1s"}},
		{"fsync", file.Config{Fsync: "always"}, []string{`fsync: must be one of "rotation", "batch", "event"`}},
		{"absolute prefix", file.Config{KeyPrefix: "/a"}, []string{`key_prefix: must not start or end with "/" nor contain "//"`}},
		{"dot dot", file.Config{KeyPrefix: "a/../b"}, []string{`key_prefix: must not contain "." or ".." segments`}},
		{"space", file.Config{KeyPrefix: "a b"}, []string{`key_prefix: may contain only letters, digits, "/" and !-_.*'()`}},
		{"nul", file.Config{Dir: "a\x00"}, []string{"dir: must not contain a NUL character"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, e := range field.Errors(tt.cfg.Validate()) {
				got = append(got, e.Error())
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestConfig_dir_defaults_to_the_data_dir(t *testing.T) {
	_, err := file.Config{}.NewPublisher(sinks.Env{IntegrationID: "erp-1"})
	var fe *field.Error
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, "dir", fe.Field)

	data := t.TempDir()
	pub, err := file.Config{}.NewPublisher(sinks.Env{IntegrationID: "erp-1", DataDir: data})
	require.NoError(t, err)
	defer pub.Close()
	assert.Equal(t, filepath.Join(data, "exports", "erp-1"), pub.(*file.Publisher).Dir())
}

func TestType_decodes_json(t *testing.T) {
	cfg, err := sinks.NewRegistry(file.Type).Decode("file",
		json.RawMessage(`{"dir":"/x","key_prefix":"p","rotate_every":"1m","rotate_bytes":1024,"fsync":"event"}`))
	require.NoError(t, err)
	assert.Equal(t, &file.Config{Dir: "/x", KeyPrefix: "p", RotateEvery: sinks.Duration(time.Minute), RotateBytes: 1024, Fsync: file.FsyncEvent}, cfg)
	assert.Equal(t, "file", cfg.Type())

	_, err = file.Type.Decode(json.RawMessage(`{"rotate_everyy":"1m"}`))
	assert.EqualError(t, err, "rotate_everyy: unknown field")
}

func TestPathSegment(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "default"},
		{"acme", "acme"},
		{"ACME-eu_1.x", "ACME-eu_1.x"},
		{"a/b", "a%2Fb"},
		{"..", "%2E."},
		{".hidden", "%2Ehidden"},
		{"ü", "%C3%BC"},
		{"50%", "50%25"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, file.PathSegment(tt.in), tt.in)
	}
	long := file.PathSegment(strings.Repeat("a", 300))
	assert.Len(t, long, 128)
	assert.NotEqual(t, long, file.PathSegment(strings.Repeat("a", 301)))
}

func FuzzDecodeConfig(f *testing.F) {
	f.Add([]byte(`{"dir":"/x","key_prefix":"a/b","rotate_every":"5m","rotate_bytes":52428800,"fsync":"batch"}`))
	f.Add([]byte(`{"rotate_every":30}`))
	f.Add([]byte(`{"key_prefix":"../.."}`))
	f.Add([]byte(`{"fsync":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := file.Type.Decode(data)
		if err != nil {
			for _, e := range field.Errors(err) {
				require.IsType(t, &field.Error{}, e)
			}
			return
		}
		fc := cfg.(*file.Config)
		if fc.Validate() != nil {
			return
		}
		// A valid prefix stays inside the directory.
		root := filepath.Join("/base", filepath.FromSlash(fc.KeyPrefix))
		rel, err := filepath.Rel("/base", root)
		require.NoError(t, err)
		require.False(t, rel == ".." || strings.HasPrefix(rel, "../"), "key_prefix %q escapes the directory", fc.KeyPrefix)
	})
}

func FuzzPathSegment(f *testing.F) {
	f.Add("acme")
	f.Add("..")
	f.Add("a/b\x00")
	f.Fuzz(func(t *testing.T, s string) {
		seg := file.PathSegment(s)
		require.NotEmpty(t, seg)
		require.LessOrEqual(t, len(seg), 128)
		require.NotContains(t, []string{".", ".."}, seg)
		require.False(t, strings.HasPrefix(seg, "."))
		require.NotContains(t, seg, "/")
		require.NotContains(t, seg, "\x00")
	})
}

// fullDiskChild marks the process of its own in which the full-disk test
// runs.
const fullDiskChild = "SINKBUS_FILE_FULL_DISK_CHILD"

func TestFileSink_full_disk_keeps_whole_lines_and_recovers(t *testing.T) {
	if os.Getenv(fullDiskChild) == "" {
		// The file size limit is the whole process's: the test runs in a
		// process of its own, lest what else writes meanwhile (go test's
		// own log of the run) fail under it.
		cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), fullDiskChild+"=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if m := regexp.MustCompile(`(?m)^\s*file_test.go:\d+: (cannot limit file sizes.*)$`).FindSubmatch(out); m != nil {
			t.Skip(string(m[1]))
		}
		require.Contains(t, string(out), "--- PASS: "+t.Name())
		return
	}
	// RLIMIT_FSIZE makes writes past 8 KiB fail, as a full disk does: the
	// first write is cut short, the next fails.
	var old syscall.Rlimit
	require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old))
	limit := old
	limit.Cur = 8 << 10
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &limit); err != nil {
		t.Skipf("cannot limit file sizes: %v", err)
	}
	restored := false
	restore := func() {
		if !restored {
			restored = true
			require.NoError(t, syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old))
		}
	}
	t.Cleanup(restore)

	h := newHarness(t, file.Config{})
	payload := `{"pad":"` + strings.Repeat("z", 900) + `"}`
	var failed int
	ok := map[string]bool{}
	for i := range 12 {
		id := fmt.Sprintf("e%02d", i)
		if err := h.sink.Publish("t", event(id, "acme", payload)); err != nil {
			class, _ := sinks.Classify(err)
			assert.Equal(t, sinks.ClassRetryable, class)
			failed++
			continue
		}
		ok[id] = true
	}
	require.Positive(t, failed, "the size limit must make a write fail")
	require.NoError(t, h.sink.Close())
	restore()

	files := readExports(t, h.dir) // fails on a half line
	ids := countIDs(files)
	for id := range ok {
		assert.Equal(t, 1, ids[id], id)
	}
	for id := range ids {
		assert.True(t, ok[id], "event %s was refused but written", id)
	}
}
