package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

func init() {
	register(benchCase{
		name: "peers",
		about: "sinkbus (memory journal and DataDir) side by side with Benthos embedded (stock, with the same idle connections, signing), " +
			"a plain Watermill router and raw net/http (unsigned and signed), one process, the same receiver: the peers module in " +
			"cmd/sinkbench/peers, run with go run in its directory (its own go.mod, so sinkbus never depends on a peer); " +
			"-side names its sides (comma-separated), -cpuprofile profiles its measured rounds",
		report: reportPeers,
	})
}

// peersArgs are the flags main forwards to the peers module.
var peersArgs []string

// reportPeers runs the peers module and returns what it printed.
func reportPeers(quick bool) (line, skip string) {
	dir, err := peersDir()
	if err != nil {
		return "", err.Error()
	}
	args := append([]string{"run", "."}, peersArgs...)
	if quick {
		args = append(args, "-quick")
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", "the peers module failed (" + err.Error() + "); run it alone: cd " + dir + " && go " + strings.Join(args, " ")
	}
	return string(bytes.TrimSpace(out)), ""
}

// peersDir finds the peers module: beside this file when it was built from
// the repository (go run ./cmd/sinkbench), else under the main module of
// the working directory.
func peersDir() (string, error) {
	var tried []string
	if _, file, _, ok := runtime.Caller(0); ok {
		tried = append(tried, filepath.Join(filepath.Dir(file), "peers"))
	}
	if out, err := exec.Command("go", "env", "GOMOD").Output(); err == nil {
		if gomod := strings.TrimSpace(string(out)); gomod != "" && gomod != os.DevNull {
			tried = append(tried, filepath.Join(filepath.Dir(gomod), "cmd", "sinkbench", "peers"))
		}
	}
	for _, dir := range tried {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
	}
	return "", errors.New("cannot find the peers module (cmd/sinkbench/peers); run sinkbench from the repository")
}
