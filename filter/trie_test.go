package filter

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestTrie_compares_a_few_names_without_wildcards(t *testing.T) {
	assert.Equal(t, []string{"order.created", "cart.updated"}, newTrie([]string{"order.created", "cart.updated"}).literal)
	assert.Nil(t, newTrie([]string{"order.created", "cart.*"}).literal, "a wildcard needs the walk")
	assert.Nil(t, newTrie([]string{"a", "b", "c", "d", "e"}).literal, "past maxLiteral the maps are quicker")
}
