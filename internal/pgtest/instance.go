package pgtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Instance is a PostgreSQL server of a test's own, in a temporary
// directory on a free port, for tests that stop and start the server: the
// machine's shared server is never touched.
type Instance struct {
	// URL connects to its database "postgres" as user "postgres".
	URL string

	t    testing.TB
	bin  string
	dir  string
	port int
	cred *syscall.Credential
}

// binDir finds initdb: on PATH, or in Debian's /usr/lib/postgresql/<v>/bin.
func binDir() string {
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p)
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Strings(dirs)
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i]
		}
	}
	return ""
}

// NewInstance creates and starts a server, stopped when t ends. It skips
// the test when PostgreSQL's binaries are not installed (fails with
// SINKBUS_REQUIRE_SERVERS=1). initdb refuses to run as root: as root, the
// server runs as the system's postgres user.
func NewInstance(t testing.TB) *Instance {
	t.Helper()
	bin := binDir()
	if bin == "" {
		msg := "PostgreSQL's initdb and pg_ctl are not installed (apt-get install postgresql; scripts/test-servers.sh does)"
		if os.Getenv("SINKBUS_REQUIRE_SERVERS") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	// Not t.TempDir: its parent is the test user's alone, and the server
	// may run as another.
	dir, err := os.MkdirTemp("", "sinkbus-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	in := &Instance{t: t, bin: bin, dir: dir}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("pgtest: running as root, and no postgres user to run the server as: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		in.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(in.dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	in.port = l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	in.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", in.port)
	in.run("initdb", "-D", in.data(), "-U", "postgres", "-A", "trust", "--no-sync")
	in.Start()
	t.Cleanup(func() { in.stop("immediate") })
	return in
}

func (in *Instance) data() string { return filepath.Join(in.dir, "data") }

func (in *Instance) run(name string, args ...string) {
	in.t.Helper()
	cmd := exec.Command(filepath.Join(in.bin, name), args...)
	cmd.Dir = in.dir
	if in.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: in.cred}
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		in.t.Fatalf("pgtest: %s: %v\n%s", name, err, out)
	}
}

// Start starts the server and waits until it accepts connections.
func (in *Instance) Start() {
	in.t.Helper()
	in.run("pg_ctl", "-D", in.data(), "-w", "-t", "60", "-l", filepath.Join(in.dir, "log"),
		"-o", fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -c unix_socket_directories='%s'", in.port, in.dir),
		"start")
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", in.port)); err == nil {
			_ = c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	in.t.Fatal("pgtest: the server does not accept connections")
}

// Stop stops the server as an operator's restart does: sessions are
// ended, what committed stays.
func (in *Instance) Stop() { in.stop("fast") }

func (in *Instance) stop(mode string) {
	cmd := exec.Command(filepath.Join(in.bin, "pg_ctl"), "-D", in.data(), "-m", mode, "-w", "stop")
	if in.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: in.cred}
	}
	_ = cmd.Run() // stopping a stopped server fails: nothing to do
}
