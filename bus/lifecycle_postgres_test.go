package bus_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/internal/pgtest"
)

// The lifecycle tests (lifecycle_*_test.go) that make their bus with
// lifecycleBus hold on PostgreSQL too, where a bus is a replica: they run
// again in a process of their own with lifecycleOnPostgresEnv set, each on a
// schema of its own.
func TestLifecycle_holds_on_postgres(t *testing.T) {
	if lifecycleOnPostgres() {
		t.Skip("the run on PostgreSQL itself")
	}
	pgtest.URL(t)
	names := lifecycleTests(t)
	require.NotEmpty(t, names)
	args := []string{"-test.run=^(" + strings.Join(names, "|") + ")$", "-test.count=1", "-test.v"}
	if testing.Short() {
		args = append(args, "-test.short")
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), lifecycleOnPostgresEnv+"=1")
	out, err := cmd.CombinedOutput()
	passed := regexp.MustCompile(`(?m)^--- PASS: Test\w+ `).FindAll(out, -1)
	skipped := regexp.MustCompile(`(?m)^--- SKIP: Test\w+ `).FindAll(out, -1)
	if err != nil {
		t.Fatalf("the lifecycle tests on PostgreSQL failed: %v\n%s", err, tail(string(out), 20000))
	}
	t.Logf("%d lifecycle tests passed on PostgreSQL, %d skipped there (they say why)", len(passed), len(skipped))
	require.Equal(t, len(names), len(passed)+len(skipped), "every one ran")
}

// lifecycleTests returns the tests of lifecycle_*_test.go whose body makes
// a lifecycleBus.
func lifecycleTests(t *testing.T) []string {
	files, err := filepath.Glob("lifecycle_*_test.go")
	require.NoError(t, err)
	head := regexp.MustCompile(`(?m)^func (Test\w+)\(t \*testing\.T\) \{$`)
	var names []string
	for _, f := range files {
		src, err := os.ReadFile(f)
		require.NoError(t, err)
		text := string(src)
		for _, m := range head.FindAllStringSubmatchIndex(text, -1) {
			body := text[m[1]:]
			if end := strings.Index(body, "\n}\n"); end >= 0 {
				body = body[:end]
			}
			if strings.Contains(body, "lifecycleBus(") {
				names = append(names, text[m[2]:m[3]])
			}
		}
	}
	return names
}
