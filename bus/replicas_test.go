package bus_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/internal/pgtest"
	"github.com/sinkbus/sinkbus/sinks"
)

// replicaHook is a sink for the replica tests: it posts each event to URL
// with the name of the replica (the process) delivering it and when its
// attempt began, so that the receiver can tell the replicas apart.
type replicaHook struct {
	URL string `json:"url"`
}

func (*replicaHook) Type() string           { return "replica_hook" }
func (*replicaHook) Validate() error        { return nil }
func (h *replicaHook) Masked() sinks.Config { return h }
func (h *replicaHook) NewPublisher(env sinks.Env) (message.Publisher, error) {
	return &replicaHookPublisher{url: h.URL, integration: env.IntegrationID}, nil
}

type replicaHookPublisher struct{ url, integration string }

func (p *replicaHookPublisher) Publish(_ string, msgs ...*message.Message) error {
	for _, m := range msgs {
		body, _ := json.Marshal(hookDelivery{Replica: os.Getenv(replicaChildEnv + "_NAME"), Integration: p.integration,
			Event: m.UUID, Payload: json.RawMessage(m.Payload), Began: time.Now().UnixNano(), Replayed: bus.Replayed(m)})
		resp, err := http.Post(p.url, "application/json", bytes.NewReader(body))
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
	}
	return nil
}

func (*replicaHookPublisher) Close() error { return nil }

type hookDelivery struct {
	Replica     string          `json:"replica"`
	Integration string          `json:"integration"`
	Event       string          `json:"event"`
	Payload     json.RawMessage `json:"payload"`
	Began       int64           `json:"began"`
	Replayed    bool            `json:"replayed,omitempty"`
	Arrived     time.Time       `json:"-"`
}

func replicaRegistry() *sinks.Registry {
	return sinks.NewRegistry(sinks.Type{Name: "replica_hook", Decode: sinks.DecodeInto[replicaHook]})
}

// replicaChildEnv makes TestReplicaChild a replica on the schema it names;
// "_NAME" names it, "_FROM" and "_TO" are the numbers of the events it
// publishes.
const replicaChildEnv = "SINKBUS_REPLICA_CHILD_SCHEMA"

const replicaLease = 2 * time.Second

func replicaConfig(schema, name string) bus.Config {
	return bus.Config{Sinks: replicaRegistry(), AllowPrivateNetworks: true, Concurrency: 4,
		Postgres: &bus.Postgres{URL: os.Getenv(pgtest.URLVar), Schema: schema, LeaseTTL: replicaLease, Replica: name}}
}

// TestReplicaChild is not a test: the replica tests run it in processes of
// their own. It prints "ready", then "pub N" once the events up to N are
// published, then "published", and closes the bus and exits when its
// stdin ends.
func TestReplicaChild(t *testing.T) {
	schema := os.Getenv(replicaChildEnv)
	if schema == "" {
		t.Skip("child process of the replica tests")
	}
	name := os.Getenv(replicaChildEnv + "_NAME")
	from, _ := strconv.Atoi(os.Getenv(replicaChildEnv + "_FROM"))
	to, _ := strconv.Atoi(os.Getenv(replicaChildEnv + "_TO"))
	b, err := bus.New(replicaConfig(schema, name))
	require.NoError(t, err)
	go func() { _ = b.Run(context.Background()) }()
	<-b.Running()
	fmt.Println("ready")
	for n := from; n < to; {
		var batch []bus.Event
		for ; n < to && len(batch) < 10; n++ {
			batch = append(batch, replicaEvent(name, n))
		}
		if err := b.Publish(context.Background(), batch...); err != nil {
			fmt.Println("error", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		fmt.Println("pub", n-1)
	}
	fmt.Println("published")
	_, _ = io.Copy(io.Discard, os.Stdin)
	require.NoError(t, b.Close())
}

// replicaEvent is event n of publisher name: its key is one of seven of
// that publisher, so that each key's order is the order it published in.
func replicaEvent(name string, n int) bus.Event {
	return bus.Event{ID: fmt.Sprintf("%s-%d", name, n), Name: "order.created",
		Payload: fmt.Appendf(nil, `{"key":"%s-%d","seq":%d}`, name, n%7, n)}
}

// replicaProc is a running TestReplicaChild.
type replicaProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	mu    sync.Mutex
	acked int // the last event number whose Publish returned
	ready chan struct{}
	done  chan struct{} // "published"
	ended chan struct{}
}

func startReplica(t *testing.T, schema, name string, from, to int) *replicaProc {
	t.Helper()
	p := &replicaProc{acked: from - 1, ready: make(chan struct{}), done: make(chan struct{}), ended: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0], "-test.run=^TestReplicaChild$", "-test.count=1")
	p.cmd.Env = append(os.Environ(), replicaChildEnv+"="+schema, replicaChildEnv+"_NAME="+name,
		fmt.Sprintf("%s_FROM=%d", replicaChildEnv, from), fmt.Sprintf("%s_TO=%d", replicaChildEnv, to))
	var stderr bytes.Buffer
	p.cmd.Stderr = &stderr
	stdout, err := p.cmd.StdoutPipe()
	require.NoError(t, err)
	p.stdin, err = p.cmd.StdinPipe()
	require.NoError(t, err)
	require.NoError(t, p.cmd.Start())
	go func() {
		defer close(p.ended)
		lines := bufio.NewScanner(stdout)
		for lines.Scan() {
			line := lines.Text()
			switch {
			case line == "ready":
				close(p.ready)
			case line == "published":
				close(p.done)
			case strings.HasPrefix(line, "pub "):
				n, _ := strconv.Atoi(strings.TrimPrefix(line, "pub "))
				p.mu.Lock()
				p.acked = n
				p.mu.Unlock()
			}
		}
		_ = p.cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGCONT)
		_ = p.stdin.Close()
		select {
		case <-p.ended:
		case <-time.After(30 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.ended
		}
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("replica %s:\n%s", name, tail(stderr.String(), 3000))
		}
	})
	select {
	case <-p.ready:
	case <-p.ended:
		t.Fatalf("replica %s ended at start: %s", name, stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("replica %s not ready", name)
	}
	return p
}

// stopped reports whether every thread of process pid is stopped (state T
// in /proc).
func stopped(pid int) bool {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	if err != nil || len(tasks) == 0 {
		return false
	}
	for _, task := range tasks {
		b, err := os.ReadFile(task)
		if err != nil {
			return false
		}
		// The state follows the command name, which is in parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || i+2 >= len(b) || b[i+2] != 'T' {
			return false
		}
	}
	return true
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (p *replicaProc) lastAcked() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.acked
}

// deliveryLog is the receiver of every replicaHook. Replayed deliveries
// take replayDelay, when set before the first.
type deliveryLog struct {
	*httptest.Server
	mu          sync.Mutex
	all         []hookDelivery
	replayDelay time.Duration
}

func newDeliveryLog(t *testing.T) *deliveryLog {
	l := &deliveryLog{}
	l.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var d hookDelivery
		if err := json.NewDecoder(r.Body).Decode(&d); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if d.Replayed {
			time.Sleep(l.replayDelay)
		}
		d.Arrived = time.Now()
		l.mu.Lock()
		l.all = append(l.all, d)
		l.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(l.Close)
	return l
}

func (l *deliveryLog) snapshot() []hookDelivery {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]hookDelivery(nil), l.all...)
}

// createReplicaIntegrations creates n integrations on schema, ordered by
// the events' key, from a bus that does not run (so delivers nothing).
func createReplicaIntegrations(t *testing.T, schema, url string, n int) []string {
	t.Helper()
	b, err := bus.New(replicaConfig(schema, "setup"))
	require.NoError(t, err)
	var ids []string
	for i := range n {
		id := fmt.Sprintf("i%d", i)
		_, err := b.Integrations().Create(context.Background(), bus.Integration{ID: id, OrderKey: "payload.key",
			Sink: &replicaHook{URL: url}})
		require.NoError(t, err)
		ids = append(ids, id)
	}
	require.NoError(t, b.Close())
	return ids
}

// replicaEvents returns how many events each publisher publishes in the
// three-replica test: SINKBUS_REPLICAS_EVENTS (the 50,000 in all)
// or, by default, 3,000 in all, which runs in CI within a minute and
// asserts the same properties.
func replicaEvents(t *testing.T) int {
	if s := os.Getenv("SINKBUS_REPLICAS_EVENTS"); s != "" {
		n, err := strconv.Atoi(s)
		require.NoError(t, err)
		return n / 3
	}
	return 1000
}

// Three replicas as processes on one database, ten integrations, events
// published through all three; one replica killed with SIGKILL mid-stream
// and started again. Every event whose Publish returned reaches each
// integration at least once; the first deliveries of each key come in the
// order it was published; an integration changes hands only when the
// replicas change (never two replicas delivering it side by side); the
// events delivered twice are few (what the killed replica had delivered
// but not yet saved in its cursor, and the in-flight window of the
// handovers).
func TestReplicas_three_processes_one_killed_mid_stream(t *testing.T) {
	pgtest.URL(t)
	schema := pgtest.Schema(t)
	log := newDeliveryLog(t)
	ids := createReplicaIntegrations(t, schema, log.URL, 10)
	per := replicaEvents(t)

	a := startReplica(t, schema, "a", 0, per)
	b := startReplica(t, schema, "b", per, 2*per)
	c := startReplica(t, schema, "c", 2*per, 3*per)
	require.Eventually(t, func() bool { return b.lastAcked() >= per+per/2 }, 60*time.Second, time.Millisecond)
	require.NoError(t, b.cmd.Process.Signal(syscall.SIGKILL))
	killed := time.Now()
	<-b.ended
	acked := b.lastAcked()
	// b's integrations are taken over within the lease of its last
	// renewal, which came before the kill.
	require.Eventually(t, func() bool {
		o := leaseOwners(t, pgtest.Pool(t), schema)
		return o["b"] == 0 && o["a"]+o["c"] == len(ids)
	}, 10*replicaLease, 5*time.Millisecond)
	takeover := time.Since(killed)
	// Rounds run late on loaded cores (and under the race detector): half
	// a lease of slack.
	assert.LessOrEqual(t, takeover, replicaLease*3/2, "takeover within the lease")
	b2 := startReplica(t, schema, "b2", acked+1, 2*per)
	for _, p := range []*replicaProc{a, c, b2} {
		select {
		case <-p.done:
		case <-time.After(120 * time.Second):
			t.Fatal("a replica did not publish its events")
		}
	}

	want := map[string]bool{}
	for n := 0; n < 3*per; n++ {
		switch {
		case n >= per && n < 2*per && n <= acked:
			want[fmt.Sprintf("b-%d", n)] = true
		case n >= per && n < 2*per:
			want[fmt.Sprintf("b2-%d", n)] = true
		case n < per:
			want[fmt.Sprintf("a-%d", n)] = true
		default:
			want[fmt.Sprintf("c-%d", n)] = true
		}
	}
	require.Eventually(t, func() bool {
		got := map[string]map[string]bool{}
		for _, d := range log.snapshot() {
			if got[d.Integration] == nil {
				got[d.Integration] = map[string]bool{}
			}
			got[d.Integration][d.Event] = true
		}
		for _, id := range ids {
			for e := range want {
				if !got[id][e] {
					return false
				}
			}
		}
		return true
	}, 180*time.Second, 100*time.Millisecond, "every acknowledged event reaches every integration")

	all := log.snapshot()
	type keySeq struct {
		Key string `json:"key"`
		Seq int    `json:"seq"`
	}
	seen := map[string]map[string]bool{} // integration -> event
	last := map[string]map[string]int{}  // integration -> key -> seq of the last first delivery
	holders := map[string][]string{}     // integration -> replicas in the order they delivered
	dups := map[string]int{}
	for _, d := range all {
		if seen[d.Integration] == nil {
			seen[d.Integration], last[d.Integration] = map[string]bool{}, map[string]int{}
		}
		if h := holders[d.Integration]; len(h) == 0 || h[len(h)-1] != d.Replica {
			holders[d.Integration] = append(holders[d.Integration], d.Replica)
		}
		if seen[d.Integration][d.Event] {
			dups[d.Integration]++
			continue
		}
		seen[d.Integration][d.Event] = true
		var ks keySeq
		require.NoError(t, json.Unmarshal(d.Payload, &ks))
		if prev, ok := last[d.Integration][ks.Key]; ok {
			assert.Greater(t, ks.Seq, prev, "%s: key %s out of order", d.Integration, ks.Key)
		}
		last[d.Integration][ks.Key] = ks.Seq
	}
	total := 0
	for _, id := range ids {
		// Joins of b, c (a is alone first), the kill, b2's join: each moves
		// an integration at most once; arrivals of one handover may
		// interleave for the in-flight window.
		assert.LessOrEqual(t, len(holders[id]), 12, "%s changed hands %v", id, holders[id])
		total += dups[id]
	}
	t.Logf("%d events, %d deliveries, %d duplicates, takeover in %s; hands: %v", len(want), len(all), total,
		takeover.Round(time.Millisecond), holders)
	assert.LessOrEqual(t, total, len(want)*len(ids)/10, "duplicates stay a small part")
}

// A replica paused (SIGSTOP) past its lease, and resumed: another took its
// integrations over; once resumed it starts no delivery and moves no
// cursor back.
func TestReplicas_a_paused_replica_is_fenced(t *testing.T) {
	pgtest.URL(t)
	schema := pgtest.Schema(t)
	log := newDeliveryLog(t)
	ids := createReplicaIntegrations(t, schema, log.URL, 4)
	a := startReplica(t, schema, "a", 0, 0)
	startReplica(t, schema, "b", 0, 0)

	pub, err := bus.New(replicaConfig(schema, "publisher")) // publishes, never runs: delivers nothing
	require.NoError(t, err)
	t.Cleanup(func() { _ = pub.Close() })
	stop := make(chan struct{})
	published := make(chan int)
	go func() {
		n := 0
		defer func() { published <- n }()
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			if pub.Publish(context.Background(), replicaEvent("p", n)) == nil {
				n++
			}
		}
	}()
	delivered := func(replica string) bool {
		for _, d := range log.snapshot() {
			if d.Replica == replica {
				return true
			}
		}
		return false
	}
	require.Eventually(t, func() bool { return delivered("a") && delivered("b") }, 30*time.Second, 10*time.Millisecond,
		"both deliver")

	require.NoError(t, a.cmd.Process.Signal(syscall.SIGSTOP))
	// kill(2) returns before every thread has stopped: the pause begins
	// once all of them show as stopped.
	require.Eventually(t, func() bool { return stopped(a.cmd.Process.Pid) }, 5*time.Second, 100*time.Microsecond)
	paused := time.Now()
	time.Sleep(replicaLease + 2*replicaLease/5) // past the lease, and b's next round
	require.Eventually(t, func() bool { return leaseOwners(t, pgtest.Pool(t), schema)["b"] == len(ids) },
		10*time.Second, 10*time.Millisecond, "b takes a's integrations over")
	cursors := func() map[string]int64 {
		rows, err := pgtest.Pool(t).Query(context.Background(), `SELECT grp, next FROM `+
			pgx.Identifier{schema}.Sanitize()+`.journal_cursors`)
		require.NoError(t, err)
		out := map[string]int64{}
		for rows.Next() {
			var g string
			var n int64
			require.NoError(t, rows.Scan(&g, &n))
			out[g] = n
		}
		return out
	}
	time.Sleep(time.Second) // b delivers meanwhile
	before := cursors()
	require.NoError(t, a.cmd.Process.Signal(syscall.SIGCONT))
	// a rejoins: the work is split anew and a takes leases again, with
	// new tokens. Until then it must start nothing.
	var rejoined time.Time // when a took its first lease again
	require.Eventually(t, func() bool {
		var at *time.Time
		require.NoError(t, pgtest.Pool(t).QueryRow(context.Background(), `SELECT min(expires_at) - $1 * interval '1 microsecond'
			FROM `+pgx.Identifier{schema}.Sanitize()+`.journal_leases WHERE owner = 'a'`, replicaLease.Microseconds()).Scan(&at))
		if at != nil {
			rejoined = *at
		}
		return at != nil
	}, 10*time.Second, 5*time.Millisecond, "a rejoins")
	time.Sleep(time.Second)
	close(stop)
	n := <-published
	after := cursors()
	for _, id := range ids {
		assert.GreaterOrEqual(t, after[id], before[id], "%s: no cursor moved back", id)
	}
	fenced := 0
	for _, d := range log.snapshot() {
		if began := time.Unix(0, d.Began); d.Replica == "a" && began.After(paused) && began.Before(rejoined) {
			fenced++
			t.Logf("a began %s %s %s after the pause, %s before rejoining", d.Integration, d.Event, began.Sub(paused), rejoined.Sub(began))
		}
	}
	assert.Zero(t, fenced, "a starts no attempt once paused past its lease, until it holds a lease again")

	// Everything published is delivered, by b (and by a again once it
	// rejoins and the work is split anew).
	require.Eventually(t, func() bool {
		got := map[string]int{}
		for _, d := range log.snapshot() {
			if strings.HasPrefix(d.Event, "p-") {
				got[d.Integration+"/"+d.Event] = 1
			}
		}
		return len(got) == n*len(ids)
	}, 60*time.Second, 50*time.Millisecond)
}
