package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// Chromium returns the path of a Chromium (or Chrome) for tests that drive
// a real browser: $SINKBUS_CHROMIUM, else the first of chromium,
// chromium-browser, google-chrome on PATH. Without one the test is skipped
// with a message saying how to install it, or fails when
// SINKBUS_REQUIRE_SERVERS=1 (as in CI, which installs it).
func Chromium(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("SINKBUS_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	missing(t, "no Chromium: install it (`apt-get install -y chromium` on Debian) or set SINKBUS_CHROMIUM to a Chromium or Chrome")
	return ""
}
