package file_test

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/file"
)

// crashDirEnv makes TestHelperProcess a process that publishes until killed.
const crashDirEnv = "SINKBUS_FILE_CRASH_DIR"

// TestHelperProcess is not a test: TestFileSink_crash_loses_no_delivered_event
// runs the test binary again with crashDirEnv set, and this function then
// publishes numbered events into that directory, printing "delivered N" for
// each one Publish accepted, until it is killed.
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("runs only as the child process of TestFileSink_crash_loses_no_delivered_event")
	}
	sink, err := file.New(file.Config{Dir: dir, RotateBytes: 1 << 20}, sinks.Env{})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	var out sync.Mutex
	big := `{"pad":"` + strings.Repeat("y", 200<<10) + `"}`
	const workers = 4
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := time.Now().Add(time.Minute) // in case nobody kills us
			for i := w; time.Now().Before(deadline); i += workers {
				payload := `{"n":` + strconv.Itoa(i) + `}`
				if i%10 == 0 {
					// Larger than the 64 KiB buffer: a write the kill can land in the middle of.
					payload = big
				}
				if err := sink.Publish("t", event(strconv.Itoa(i), fmt.Sprintf("tenant-%d", i%3), payload)); err != nil {
					fmt.Println("error", err)
					os.Exit(2)
				}
				out.Lock()
				fmt.Printf("delivered %d\n", i)
				out.Unlock()
			}
		}()
	}
	wg.Wait()
	os.Exit(3)
}

func TestFileSink_crash_loses_no_delivered_event(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	delivered := make(map[int]bool)
	sc := bufio.NewScanner(stdout)
	require.NoError(t, readDelivered(sc, 3000, delivered))
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	for sc.Scan() { // what it reported before it died counts too
		_, _ = parseDelivered(sc.Text(), delivered)
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	require.Equal(t, "signal: killed", exit.Error())

	var tmps []string
	halves := 0
	require.NoError(t, filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(path, ".tmp") {
			tmps = append(tmps, path)
			data, err := os.ReadFile(path)
			if err == nil && len(data) > 0 && data[len(data)-1] != '\n' {
				halves++
			}
			return err
		}
		return err
	}))
	require.NotEmpty(t, tmps, "the crash must leave open files behind")
	if halves == 0 {
		// Each batch is one write, so a kill seldom splits a line: cut one
		// by hand, as a kill inside that write would have.
		f, err := os.OpenFile(tmps[0], os.O_WRONLY|os.O_APPEND, 0)
		require.NoError(t, err)
		_, err = f.WriteString(`{"id":"half-written","name":"order.crea`)
		require.NoError(t, err)
		require.NoError(t, f.Close())
	}

	sink, err := file.New(file.Config{Dir: dir}, sinks.Env{})
	require.NoError(t, err)
	require.NoError(t, sink.Close())
	files := readExports(t, dir) // fails on any half line
	ids := countIDs(files)
	for _, f := range files {
		assert.False(t, f.tmp, "%s was not completed", f.rel)
	}
	for n := range delivered {
		assert.Equal(t, 1, ids[strconv.Itoa(n)], "delivered event %d", n)
	}
	assert.Zero(t, ids["half-written"], "a half line must be cut")
	t.Logf("%d events delivered before the kill, %d in the files; %d files were open, %d of them ending in a half line",
		len(delivered), len(ids), len(tmps), halves)
}

// readDelivered reads the helper's output until it reported until events.
func readDelivered(sc *bufio.Scanner, until int, out map[int]bool) error {
	for sc.Scan() {
		ok, err := parseDelivered(sc.Text(), out)
		if err != nil {
			return err
		}
		if ok && len(out) >= until {
			return nil
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return errors.New("the helper process ended early")
}

func parseDelivered(line string, out map[int]bool) (bool, error) {
	if rest, ok := strings.CutPrefix(line, "error "); ok {
		return false, errors.New(rest)
	}
	rest, ok := strings.CutPrefix(line, "delivered ")
	if !ok {
		return false, nil
	}
	n, err := strconv.Atoi(rest)
	if err != nil {
		return false, err
	}
	out[n] = true
	return true, nil
}
