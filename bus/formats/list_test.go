package formats_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/formats"
	"github.com/sinkbus/sinkbus/field"
)

func TestDecodeList_reads_every_shape_and_names_each_problem_by_element(t *testing.T) {
	b, err := bus.New(bus.Config{})
	require.NoError(t, err)
	defer b.Close()
	m := b.Integrations()

	list, err := formats.DecodeList(m, []byte(`[
		{"id":"own","integration_type":"webhook","configuration":{"url":"https://a.example.com"}},
		{"data":{"type":"integration","id":"ep","integration_type":"webhook","configuration":{"url":"https://b.example.com"}}},
		{"id":"ns","integration_type":"permanent","callback_url":"https://c.example.com"}
	]`))
	require.NoError(t, err)
	require.Len(t, list, 3)
	for i, id := range []string{"own", "ep", "ns"} {
		assert.Equal(t, id, list[i].ID)
		assert.Equal(t, "webhook", list[i].Type())
	}

	_, err = formats.DecodeList(m, []byte(`[
		{"id":"own","integration_type":"webhook","configuration":{"url":"ftp://a.example.com"}},
		{"data":{"type":"integration","id":"ep","integration_type":"webhook","observes":[""],"configuration":{"url":"https://b.example.com"}}},
		{"id":"ns","integration_type":"permanent","callback_url":"gopher://c"}
	]`))
	require.ErrorIs(t, err, bus.ErrInvalid)
	var got []string
	for _, e := range field.Errors(err) {
		if fe := e.(*field.Error); fe.Field != "" {
			got = append(got, fe.Field)
		}
	}
	assert.Equal(t, []string{"[0].configuration.url", "[1].data.observes[0]", "[2].callback_url"}, got)

	for _, body := range []string{``, `{}`, `[] []`, `null`} {
		_, err = formats.DecodeList(m, []byte(body))
		require.ErrorIs(t, err, bus.ErrInvalid, body)
	}
	list, err = formats.DecodeList(m, []byte(`[]`))
	require.NoError(t, err)
	assert.Empty(t, list)
}

// An application keeps the integrations it owns in a JSON file beside its
// code, in any of the shapes, and reconciles them at start-up.
func ExampleDecodeList() {
	b, _ := bus.New(bus.Config{})
	defer b.Close()
	file := []byte(`[{"id":"erp","integration_type":"webhook","observes":["order.*"],
		"configuration":{"url":"https://erp.example.com/hooks"}}]`)

	declared, err := formats.DecodeList(b.Integrations(), file)
	if err != nil {
		panic(err)
	}
	res, err := b.Integrations().Reconcile(context.Background(), "shop", declared)
	if err != nil {
		panic(err)
	}
	fmt.Println(res.Created)
	// Output: [erp]
}

// FuzzDecodeList feeds declaration files to DecodeList: it never panics,
// every refusal is ErrInvalid, and what it accepts Reconcile takes.
func FuzzDecodeList(f *testing.F) {
	f.Add([]byte(`[{"id":"erp","integration_type":"webhook","configuration":{"url":"https://erp.example.com/hooks"}}]`))
	f.Add([]byte(`[{"data":{"type":"integration","id":"ep","integration_type":"webhook","configuration":{"url":"https://b.example.com"}}},{"id":"ns","integration_type":"permanent","callback_url":"https://c.example.com"}]`))
	f.Add([]byte(`[]`))
	b, err := bus.New(bus.Config{})
	require.NoError(f, err)
	f.Cleanup(func() { _ = b.Close() })
	m := b.Integrations()
	f.Fuzz(func(t *testing.T, body []byte) {
		list, err := formats.DecodeList(m, body)
		if err != nil {
			assert.ErrorIs(t, err, bus.ErrInvalid)
			return
		}
		for _, in := range list {
			require.NoError(t, m.Validate(in))
		}
	})
}

// A body cannot claim an owner: what the management API creates is never
// removed by a reconcile, whatever it says.
func TestCreate_ignores_an_owner_in_the_body(t *testing.T) {
	b, err := bus.New(bus.Config{})
	require.NoError(t, err)
	defer b.Close()
	m := b.Integrations()
	in, _, err := formats.Create(context.Background(), m, []byte(`{"id":"api","owner":"shop","integration_type":"webhook",
		"configuration":{"url":"https://a.example.com"}}`))
	require.NoError(t, err)
	assert.Empty(t, in.Owner)
	res, err := m.Reconcile(context.Background(), "shop", nil)
	require.NoError(t, err)
	assert.Empty(t, res.Removed)
	_, _, err = formats.Update(context.Background(), m, "api", []byte(`{"owner":"shop","integration_type":"webhook",
		"configuration":{"url":"https://b.example.com"}}`))
	require.NoError(t, err)
	got, err := m.Get(context.Background(), "api")
	require.NoError(t, err)
	assert.Empty(t, got.Owner)
}
