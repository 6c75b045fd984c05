package bus

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
)

// assignments returns, for each member, the integrations assign gives it.
func assignments(refs int, members []string) map[string]map[string]bool {
	b := &Bus{runners: make(map[string]*runner)}
	for i := range refs {
		ref := fmt.Sprintf("i%d", i)
		b.runners[ref] = &runner{b: b, in: Integration{ID: ref, Status: Running}, ready: true}
	}
	b.runners["stopped"] = &runner{b: b, in: Integration{ID: "stopped", Status: Stopped}, ready: true}
	out := make(map[string]map[string]bool)
	for _, m := range members {
		out[m] = (&pgBackend{b: b, replica: m}).assign(members)
	}
	return out
}

// Every running integration goes to exactly one member, n/m each (the
// first n%m members one more), and a member joining moves no more than
// its share.
func TestAssign_balances_and_moves_little(t *testing.T) {
	two := assignments(10, []string{"a", "b"})
	assert.Len(t, two["a"], 5)
	assert.Len(t, two["b"], 5)
	three := assignments(10, []string{"a", "b", "c"})
	assert.Len(t, three["a"], 4)
	assert.Len(t, three["b"], 3)
	assert.Len(t, three["c"], 3)
	for i := range 10 {
		ref := fmt.Sprintf("i%d", i)
		owners := 0
		for _, m := range []string{"a", "b", "c"} {
			if three[m][ref] {
				owners++
			}
		}
		assert.Equal(t, 1, owners, ref)
	}
	for _, a := range three {
		assert.False(t, a["stopped"], "a stopped integration is nobody's")
	}
	moved := 0
	for _, m := range []string{"a", "b"} {
		for ref := range two[m] {
			if !three[m][ref] {
				moved++
			}
		}
	}
	assert.LessOrEqual(t, moved, 4, "c's joining moves about its share")
}
