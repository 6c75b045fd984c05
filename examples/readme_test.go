// Package examples_test keeps README.md true to the examples: each one is
// listed with the line that runs it, and each example that is a module of
// its own is tested by the README's test commands and by CI.
package examples_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestREADME_lists_every_example_with_its_command(t *testing.T) {
	readme := read(t, "../README.md")
	ci := read(t, "../.ci/run")
	entries, err := os.ReadDir(".")
	require.NoError(t, err)
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		name := e.Name()
		if _, err := os.Stat(filepath.Join(name, "go.mod")); err == nil {
			assert.Contains(t, readme, "(cd examples/"+name+" && go run .)", "how to run %s", name)
			assert.Contains(t, readme, "(cd examples/"+name+" && go test -race ./...)", "the README's tests of %s", name)
			assert.Contains(t, ci, "examples/"+name, ".ci/run tests %s", name)
			continue
		}
		run := "go run ./examples/" + name
		test := "go test ./examples/" + name
		assert.True(t, strings.Contains(readme, run) || strings.Contains(readme, test), "README.md runs examples/%s", name)
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}
