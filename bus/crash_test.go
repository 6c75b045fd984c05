package bus_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/replay"
	"github.com/sinkbus/sinkbus/sinks/webhook"
)

// crashChildEnv makes TestCrashChild a process that publishes numbered events
// into the bus in the directory it names. The parent gives it, through
// crashChildEnv+"_URL", "_FROM" and "_TO", the webhook receiver and the
// numbers to publish ("_TO" empty: until killed).
const crashChildEnv = "SINKBUS_CRASH_CHILD_DIR"

// TestCrashChild is not a test: TestCrash_kill_9_loses_no_published_event
// re-executes the test binary to run it. It prints "pub N" once Publish of
// number N has returned nil, "published" after the last number, and closes
// the bus and exits when its stdin ends (the parent closing it, or dying).
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		t.Skip("child process of TestCrash_kill_9_loses_no_published_event")
	}
	fail := childFail("crash child")
	from, err := strconv.Atoi(os.Getenv(crashChildEnv + "_FROM"))
	if err != nil {
		fail("from", err)
	}
	to := from + 10_000_000 // bounded even if the parent forgets to kill
	if s := os.Getenv(crashChildEnv + "_TO"); s != "" {
		if to, err = strconv.Atoi(s); err != nil {
			fail("to", err)
		}
	}

	b, err := bus.New(bus.Config{DataDir: dir, CloseTimeout: 5 * time.Second, AllowPrivateNetworks: true,
		// Errors go to stderr, which the parent shows when it fails.
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))})
	if err != nil {
		fail("open", err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- b.Run(runCtx) }()
	select {
	case <-b.Running():
	case err := <-ran:
		fail("run", err)
	}
	// A previous child may have created it; a kill during Create leaves
	// either nothing or the saved integration with its cursor.
	_, err = b.Integrations().Create(context.Background(), bus.Integration{ID: "crash",
		Sink: webhook.Config{URL: os.Getenv(crashChildEnv + "_URL"), AllowPrivateNetworks: true}})
	if err != nil && !errors.Is(err, bus.ErrExists) {
		fail("create", err)
	}

	stdinClosed := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(stdinClosed)
	}()
	for n := from; n < to; n++ {
		select {
		case <-stdinClosed:
			os.Exit(3) // the parent is gone: do not publish forever
		default:
		}
		err := b.Publish(context.Background(), bus.Event{ID: crashEventID(n), Name: "crash.numbered",
			Payload: json.RawMessage(fmt.Sprintf(`{"n":%d}`, n))})
		if err != nil {
			fail("publish", err)
		}
		fmt.Printf("pub %d\n", n) // os.Stdout is unbuffered: printed means confirmed
	}
	fmt.Println("published")
	<-stdinClosed // deliveries go on until the parent has seen them all
	cancel()
	if err := b.Close(); err != nil {
		fail("close", err)
	}
	<-ran
}

// childFail returns how a child process of a test gives up: it says what
// failed on stderr, which the parent shows, and exits.
func childFail(who string) func(what string, err error) {
	return func(what string, err error) {
		fmt.Fprintf(os.Stderr, "%s: %s: %v\n", who, what, err)
		os.Exit(2)
	}
}

func crashEventID(n int) string { return fmt.Sprintf("crash-%07d", n) }

// numberReceiver is the webhook endpoint of the crash test: it counts how
// many times it received each number.
type numberReceiver struct {
	*httptest.Server
	mu      sync.Mutex
	counts  map[int]int
	bad     []string
	changed chan struct{}     // closed and replaced on every receipt
	active  map[net.Conn]bool // connections with a request being handled
}

func newNumberReceiver(t *testing.T) *numberReceiver {
	r := &numberReceiver{counts: make(map[int]int), changed: make(chan struct{}), active: make(map[net.Conn]bool)}
	r.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			// Not a delivery (the child died mid-request): never answer 2XX.
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		var env struct {
			Payload struct {
				N *int `json:"n"`
			} `json:"payload"`
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		if err := json.Unmarshal(body, &env); err != nil || env.Payload.N == nil {
			r.bad = append(r.bad, string(body))
			http.Error(w, "no payload.n", http.StatusBadRequest)
			return
		}
		r.counts[*env.Payload.N]++
		close(r.changed)
		r.changed = make(chan struct{})
		w.WriteHeader(http.StatusNoContent)
	}))
	r.Config.ConnState = func(c net.Conn, state http.ConnState) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if state == http.StateActive {
			r.active[c] = true
		} else {
			delete(r.active, c)
		}
	}
	r.Start()
	t.Cleanup(r.Close)
	return r
}

// quiet waits until no request is being handled: once a sender is dead,
// everything it sent has been counted.
func (r *numberReceiver) quiet(t *testing.T) {
	t.Helper()
	require.Eventually(t, func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.active) == 0
	}, 10*time.Second, time.Millisecond, "requests of a dead sender still being handled")
}

// missing returns the numbers of want not received yet, and a channel closed
// at the next receipt.
func (r *numberReceiver) missing(want map[int]bool) ([]int, <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []int
	for n := range want {
		if r.counts[n] == 0 {
			out = append(out, n)
		}
	}
	sort.Ints(out)
	return out, r.changed
}

// crashChild is one run of TestCrashChild. Its stdout is read line by line
// in a goroutine: a live child never ends it, so nothing may wait for EOF
// before the child is dead.
type crashChild struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr lockedBuffer
	lines  chan string // closed at EOF
	done   chan error  // Wait's result, after EOF
	quit   chan struct{}
}

// lockedBuffer is written from several goroutines while a test reads it: a
// crash child's stderr, a bus's log.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func startCrashChild(t *testing.T, dir, url string, from int, to string) *crashChild {
	t.Helper()
	return startChild(t, "TestCrashChild", crashChildEnv+"="+dir, crashChildEnv+"_URL="+url,
		fmt.Sprintf("%s_FROM=%d", crashChildEnv, from), crashChildEnv+"_TO="+to)
}

// startChild re-executes the test binary to run the test named, with env
// added to the environment, and kills it when the test ends.
func startChild(t *testing.T, test string, env ...string) *crashChild {
	t.Helper()
	c := &crashChild{lines: make(chan string), done: make(chan error, 1), quit: make(chan struct{})}
	c.cmd = exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	c.cmd.Env = append(os.Environ(), env...)
	c.cmd.Stderr = &c.stderr
	stdout, err := c.cmd.StdoutPipe()
	require.NoError(t, err)
	c.stdin, err = c.cmd.StdinPipe()
	require.NoError(t, err)
	require.NoError(t, c.cmd.Start())
	go func() {
		lines := bufio.NewScanner(stdout)
		for lines.Scan() {
			select {
			case c.lines <- lines.Text():
			case <-c.quit: // nobody listens: keep draining so the child never blocks
			}
		}
		close(c.lines)
		c.done <- c.cmd.Wait() // only after EOF, as StdoutPipe requires
	}()
	t.Cleanup(func() {
		close(c.quit)
		_ = c.cmd.Process.Kill()
		select {
		case <-c.done:
		case <-time.After(10 * time.Second):
			t.Errorf("child %d did not exit after SIGKILL", c.cmd.Process.Pid)
		}
	})
	return c
}

// waitLine reads the child's output until it prints want.
func (c *crashChild) waitLine(t *testing.T, want string) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case line, ok := <-c.lines:
			require.True(t, ok, "child exited before printing %q: %s", want, &c.stderr)
			if line == want {
				return
			}
		case <-timeout:
			t.Fatalf("child did not print %q: %s", want, &c.stderr)
		}
	}
}

// wait waits for the child's exit once it is dying, and checks it did not
// report a data race or an error of its own.
func (c *crashChild) wait(t *testing.T, lines func(string)) error {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case line, ok := <-c.lines:
			if ok {
				lines(line)
				continue
			}
			var err error
			select {
			case err = <-c.done:
			case <-deadline:
				t.Fatal("child did not exit")
			}
			c.done <- err // for the cleanup
			assert.NotContains(t, c.stderr.String(), "DATA RACE", "child stderr:\n%s", c.stderr.String())
			return err
		case <-deadline:
			t.Fatal("child did not exit")
		}
	}
}

func TestCrash_kill_9_loses_no_published_event(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	const kills, last = 6, 200 // the final child publishes `last` more numbers
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 0))
	t.Logf("seed %d", seed)
	rcv := newNumberReceiver(t)
	dir := t.TempDir()

	var children []*crashChild
	// At each kill: the numbers received so far, and the cursor saved
	// just before it. A later process may send again only what the saved
	// cursor did not cover: that is the bound on duplicates.
	type killed struct {
		received map[int]bool
		saved    replay.Cursor
	}
	var deaths []killed
	confirmed := map[int]bool{} // numbers whose Publish returned nil
	next := 0                   // the next number to publish
	onLine := func(line string) {
		if s, ok := strings.CutPrefix(line, "pub "); ok {
			n, err := strconv.Atoi(s)
			require.NoError(t, err, line)
			require.Equal(t, next, n, "a child publishes from where the last one was confirmed")
			confirmed[n] = true
			next = n + 1
		}
	}

	for round := range kills {
		c := startCrashChild(t, dir, rcv.URL, next, "")
		children = append(children, c)
		delay := time.Duration(rng.IntN(250)) * time.Millisecond
		var kill <-chan time.Time
		if round%3 == 2 {
			// From the start: the kill may land while the bus opens and
			// recovers the journal.
			kill = time.After(delay)
		}
		started := next
		timeout := time.After(30 * time.Second)
	publishing:
		for {
			select {
			case line, ok := <-c.lines:
				require.True(t, ok, "child exited before the kill: %s", &c.stderr)
				onLine(line)
				if kill == nil && next > started {
					kill = time.After(delay)
				}
			case <-kill:
				saved := savedCursor(t, dir, "crash")
				require.NoError(t, c.cmd.Process.Signal(syscall.SIGKILL))
				deaths = append(deaths, killed{saved: saved})
				break publishing
			case <-timeout:
				t.Fatalf("round %d: child published nothing: %s", round, &c.stderr)
			}
		}
		err := c.wait(t, onLine)
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit)
		require.Equal(t, "signal: killed", exit.Error(), "the child must die by the kill: %s", &c.stderr)
		rcv.quiet(t) // dead: it sends no more, and what it sent is counted
		deaths[len(deaths)-1].received = rcv.received()
		t.Logf("round %d: killed %v after %s, %d numbers confirmed", round, delay,
			map[bool]string{true: "its start", false: "its first publish"}[round%3 == 2], next-started)
	}

	// The last child publishes the end of the stream and delivers until the
	// receiver has every confirmed number, backlog of the dead ones included.
	started := next
	c := startCrashChild(t, dir, rcv.URL, next, strconv.Itoa(next+last))
	children = append(children, c)
	timeout := time.After(30 * time.Second)
	for published := false; !published; {
		select {
		case line, ok := <-c.lines:
			require.True(t, ok, "last child exited: %s", &c.stderr)
			published = line == "published"
			onLine(line)
		case <-timeout:
			t.Fatalf("last child did not publish: %s", &c.stderr)
		}
	}
	require.Equal(t, started+last, next)
	deadline := time.After(20 * time.Second)
	var missing []int
	for waiting := true; waiting; {
		var changed <-chan struct{}
		if missing, changed = rcv.missing(confirmed); len(missing) == 0 {
			break
		}
		select {
		case <-changed:
		case <-deadline:
			waiting = false
		}
	}
	require.NoError(t, c.stdin.Close()) // asks the child to close the bus
	require.NoError(t, c.wait(t, onLine), "a recovered bus closes cleanly: %s", &c.stderr)
	if len(missing) > 0 {
		var stderrs strings.Builder
		for i, c := range children {
			fmt.Fprintf(&stderrs, "child %d stderr:\n%s", i, &c.stderr)
		}
		t.Fatalf("%d confirmed numbers never received, first %v\n%s%s", len(missing),
			missing[:min(10, len(missing))], crashDiagnosis(t, dir, missing), &stderrs)
	}

	offsets := journalOffsets(t, dir)
	// The bound: at each kill, the journal offsets of the numbers received
	// so far that the cursor saved before the kill did not cover (in
	// flight, or acknowledged since the last save: each may be sent once
	// more), and the numbers a kill made a child publish again (killed
	// between the append and "pub"), which are in the journal twice.
	bound := 0
	for _, k := range deaths {
		for n := range k.received {
			for _, o := range offsets[n] {
				if !k.saved.Done(o) {
					bound++
				}
			}
		}
	}
	for _, os := range offsets {
		bound += len(os) - 1
	}

	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	assert.Empty(t, rcv.bad, "every body carries payload.n")
	receipts := 0
	for n, k := range rcv.counts {
		receipts += k
		// A number killed between its append and "pub" is published again
		// by the next child, so every number received was confirmed.
		assert.True(t, confirmed[n], "number %d received but never published", n)
	}
	duplicates := receipts - len(rcv.counts)
	t.Logf("%d numbers confirmed, received %d times: %d duplicates, bound %d",
		len(confirmed), receipts, duplicates, bound)
	assert.LessOrEqual(t, duplicates, bound,
		"a crash re-sends only what was in flight or acknowledged after the last cursor save")
}

// received returns the numbers received so far.
func (r *numberReceiver) received() map[int]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[int]bool, len(r.counts))
	for n := range r.counts {
		out[n] = true
	}
	return out
}

// journalOffsets returns the journal offsets of each number in dir.
func journalOffsets(t *testing.T, dir string) map[int][]uint64 {
	b, err := bus.New(bus.Config{DataDir: dir, AllowPrivateNetworks: true})
	require.NoError(t, err)
	defer b.Close()
	out := map[int][]uint64{}
	err = b.Events().Scan(ctx, time.Time{}, time.Time{}, func(r replay.Record) bool {
		var p struct{ N int }
		require.NoError(t, json.Unmarshal(r.Payload, &p))
		out[p.N] = append(out[p.N], r.Offset)
		return true
	})
	require.NoError(t, err)
	return out
}

// crashDiagnosis describes the crash integration as the DataDir keeps it.
func crashDiagnosis(t *testing.T, dir string, missing []int) string {
	b, err := bus.New(bus.Config{DataDir: dir, AllowPrivateNetworks: true})
	require.NoError(t, err)
	defer b.Close()
	var out strings.Builder
	lag, err := b.Integrations().Lag(ctx, "crash")
	fmt.Fprintf(&out, "lag %d %v\n", lag, err)
	entries, err := b.Integrations().Log(ctx, "crash")
	require.NoError(t, err)
	for _, e := range entries {
		fmt.Fprintf(&out, "log %s: %s\n", e.Action, e.Reason)
	}
	want := map[string]bool{}
	for _, n := range missing {
		want[fmt.Sprintf(`{"n":%d}`, n)] = true
	}
	err = b.Events().Scan(ctx, time.Time{}, time.Time{}, func(r replay.Record) bool {
		if want[string(r.Payload)] {
			fmt.Fprintf(&out, "journal offset %d: %s %s\n", r.Offset, r.UUID, r.Payload)
		}
		return true
	})
	require.NoError(t, err)
	rejected, err := b.Integrations().Rejected(ctx, "crash")
	require.NoError(t, err)
	for _, r := range rejected {
		fmt.Fprintf(&out, "rejected %+v\n", r)
	}
	return out.String()
}
