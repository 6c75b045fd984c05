package jsondoc_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/sinkbus/sinkbus/internal/jsondoc"
)

func TestStrings_walks_beside_the_others_and_replaces(t *testing.T) {
	doc := jsondoc.Of(map[string]any{"a": "x", "list": []any{"y", 1, map[string]any{"b": "z"}}, "n": 1.5})
	other := jsondoc.Of(map[string]any{"a": "X", "list": []any{"Y"}})
	var seen []string
	out, changed := jsondoc.Strings("root", doc, []any{other, nil}, func(path, s string, at []any) (string, bool) {
		seen = append(seen, path+"="+s)
		if o, ok := at[0].(string); ok {
			return o, true
		}
		return "", false
	})
	assert.True(t, changed)
	assert.Equal(t, []string{"root.a=x", "root.list[0]=y", "root.list[2].b=z"}, seen)
	data, _ := json.Marshal(out)
	assert.JSONEq(t, `{"a":"X","list":["Y",1,{"b":"z"}],"n":1.5}`, string(data))
	assert.Nil(t, jsondoc.Of(nil))
}
