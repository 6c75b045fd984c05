// Package testenv finds the real servers the tests talk to.
package testenv

import (
	"os"
	"testing"
)

// Server returns the value of the environment variable name, which points a
// test at a real server. When it is unset the test is skipped with a message
// saying how to start the servers, or fails when SINKBUS_REQUIRE_SERVERS=1
// (as in CI), so a missing server can never pass for a green run.
func Server(t testing.TB, name string) string {
	t.Helper()
	if v := os.Getenv(name); v != "" {
		return v
	}
	missing(t, name+" is not set: start the test servers with `eval \"$(scripts/test-servers.sh start)\"`")
	return ""
}

// missing skips the test saying msg, or fails it when
// SINKBUS_REQUIRE_SERVERS=1.
func missing(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("SINKBUS_REQUIRE_SERVERS") == "1" {
		t.Fatal(msg + " (SINKBUS_REQUIRE_SERVERS=1)")
	}
	t.Skip(msg)
}
