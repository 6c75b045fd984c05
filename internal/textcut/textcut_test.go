package textcut_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/sinkbus/sinkbus/internal/textcut"
)

func TestCut_keeps_whole_characters(t *testing.T) {
	assert.Equal(t, "short", textcut.Cut("short", 5))
	assert.Equal(t, "abc…", textcut.Cut("abcdef", 3))
	assert.Equal(t, "a…", textcut.Cut("aé", 2), "é is two bytes: not cut in two")
	assert.Equal(t, "…", textcut.Cut("éé", 1))
}
