package main

import "testing"

// The example is part of the README's set-up: it must keep running to the end.
func TestQuickstart_runs_to_the_end(t *testing.T) {
	if err := run(); err != nil {
		t.Fatal(err)
	}
}
