package formats_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/bustest"
	"github.com/sinkbus/sinkbus/bus/formats"
	"github.com/sinkbus/sinkbus/field"
	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/file"
	"github.com/sinkbus/sinkbus/sinks/webhook"
)

// A body that cannot be decoded whole is reported with every problem at
// once: each member that cannot be decoded, and what validation finds in
// the rest.
func TestCreate_reports_every_decoding_and_validation_problem(t *testing.T) {
	tb := bustest.New(t)
	for _, tc := range []struct {
		body   string
		fields []string
	}{
		{`{"id":"BAD","observes":[""],"configuration":{"url":"ftp://x","colour":1}}`,
			[]string{"id", "observes[0]", "integration_type"}},
		{`{"id":"BAD","integration_type":"webhook","observes":[""],"configuration":{"url":"ftp://x","colour":1}}`,
			[]string{"id", "observes[0]", "configuration.url", "configuration.colour"}},
		{`{"integration_type":"webhook","colour":"red","concurrency":"many","observes":"order.*",
			"configuration":{"url":"https://erp.example.com","colour":1,"headers":5}}`,
			[]string{"colour", "concurrency", "observes", "configuration.colour", "configuration.headers"}},
		{`{"data":{"type":"product","integration_type":"webhook","enabled":"yes","configuration":{"url":"ftp://x"}}}`,
			[]string{"data.enabled", "data.type", "data.configuration.url"}},
		{`{"data":{"integration_type":"webhook","configuration":{"url":"https://erp.example.com"}},"extra":1}`,
			[]string{"extra"}},
		{`{"integration_type":"temporary","callback_url":"https://erp.example.com","callback_parameters":{"colour":1}}`,
			[]string{"callback_parameters.colour", "starts_at", "ends_at"}},
	} {
		_, _, err := formats.Create(ctx, tb.Integrations(), []byte(tc.body))
		require.ErrorIs(t, err, bus.ErrInvalid, tc.body)
		assert.ElementsMatch(t, tc.fields, fieldsOf(err), "%s: %v", tc.body, err)
	}
	list, err := tb.Integrations().List(ctx)
	require.NoError(t, err)
	assert.Empty(t, list)

	// The same from Decode.
	_, _, err = formats.Decode(tb.Integrations(), []byte(`{"id":"BAD","integration_type":"webhook","observes":[""],"configuration":{"url":"ftp://x","colour":1}}`))
	require.ErrorIs(t, err, bus.ErrInvalid)
	assert.ElementsMatch(t, []string{"id", "observes[0]", "configuration.url", "configuration.colour"}, fieldsOf(err))
}

// Every documented body of the management API's tests goes to Create as it
// is, Elastic Path's read-only links and meta included. The NewStore
// samples that name no URL are refused naming NewStore's field, and the
// Elastic Path samples whose credentials are starred (a response, and a
// request whose password the page hides) naming those: stored as they
// are, the stars would become the credentials.
func TestCreate_accepts_the_documented_bodies_verbatim(t *testing.T) {
	files, err := filepath.Glob("../api/testdata/*.json")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	refused := map[string][]string{
		"newstore_webhook.json":              {"callback_url"},
		"newstore_response.json":             {"callback_url"},
		"elastic_path_aws_sqs_response.json": {"data.configuration.aws_access_key_id", "data.configuration.aws_secret_access_key"},
		"elastic_path_stomp_request.json":    {"data.configuration.password"},
	}
	for _, name := range files {
		t.Run(filepath.Base(name), func(t *testing.T) {
			dir := t.TempDir() // the s3 sample's spool
			tb := bustest.New(t, func(c *bus.Config) { c.DataDir = dir })
			body, err := os.ReadFile(name)
			require.NoError(t, err)
			in, _, err := formats.Create(ctx, tb.Integrations(), body)
			if want, ok := refused[filepath.Base(name)]; ok {
				require.ErrorIs(t, err, bus.ErrInvalid)
				assert.Equal(t, want, fieldsOf(err))
				return
			}
			require.NoError(t, err)
			got, err := tb.Integrations().Get(ctx, in.ID)
			require.NoError(t, err)
			assert.NotEmpty(t, got.Type())
		})
	}
}

// NewStore's bodies carry the configuration in callback_url,
// callback_parameters or s3_parameters: errors name those, from decoding,
// validation and the sink alike.
func TestCreate_names_newstore_fields_as_sent(t *testing.T) {
	tb := bustest.New(t)
	for _, tc := range []struct {
		body   string
		fields []string
	}{
		{`{"integration_type":"permanent","callback_parameters":{"api_key":"k"}}`, []string{"callback_url"}},
		{`{"integration_type":"permanent","callback_url":"ftp://erp.example.com"}`, []string{"callback_url"}},
		{`{"integration_type":"permanent","callback_parameters":{"url":"ftp://erp.example.com"}}`, []string{"callback_parameters.url"}},
		{`{"integration_type":"permanent","callback_url":"https://erp.example.com","callback_parameters":{"timeout":"x"}}`,
			[]string{"callback_parameters.timeout"}},
		{`{"integration_type":"permanent","s3_parameters":{"bucket":"x"}}`, []string{"s3_parameters.bucket", "s3_parameters.spool_dir"}},
		// On a bus without a data directory an s3 sink needs a spool:
		// refused at creation rather than saved and broken.
		{`{"id":"sap","integration_type":"permanent","s3_parameters":{"bucket":"sap_export"}}`, []string{"s3_parameters.spool_dir"}},
	} {
		_, _, err := formats.Create(ctx, tb.Integrations(), []byte(tc.body))
		require.ErrorIs(t, err, bus.ErrInvalid, tc.body)
		assert.Equal(t, tc.fields, fieldsOf(err), "%s: %v", tc.body, err)
	}
	_, err := tb.Integrations().Get(ctx, "sap")
	assert.ErrorIs(t, err, bus.ErrNotFound)
}

// A configuration decoder's error is an unknown type only when it wraps
// sinks.ErrUnknownType, whatever its text says.
func TestCreate_matches_unknown_types_by_error_not_text(t *testing.T) {
	reg := bustest.Registry()
	require.NoError(t, reg.Register(sinks.Type{Name: "fanout", Decode: func(json.RawMessage) (sinks.Config, error) {
		// A type that forwards to another one, quoting the registry's words.
		return nil, field.New("downstream", "%s \"carrier_pigeon\"", sinks.ErrUnknownType.Error())
	}}))
	tb := bustest.New(t, func(c *bus.Config) { c.Sinks = reg })
	_, _, err := formats.Create(ctx, tb.Integrations(), []byte(`{"integration_type":"fanout","configuration":{"downstream":"carrier_pigeon"}}`))
	require.ErrorIs(t, err, bus.ErrInvalid)
	assert.Equal(t, []string{"configuration.downstream"}, fieldsOf(err))

	_, _, err = formats.Create(ctx, tb.Integrations(), []byte(`{"integration_type":"carrier_pigeon"}`))
	require.ErrorIs(t, err, bus.ErrInvalid)
	assert.Equal(t, []string{"integration_type"}, fieldsOf(err))
	assert.True(t, strings.Contains(err.Error(), `unknown type "carrier_pigeon"`), err.Error())
}

func TestCreate_names_unknown_types_and_fields(t *testing.T) {
	tb := bustest.New(t)
	_, _, err := formats.Create(ctx, tb.Integrations(), []byte(`{"data":{"type":"integration","integration_type":"carrier_pigeon","observes":["order.created"]}}`))
	require.ErrorIs(t, err, bus.ErrInvalid)
	assert.Contains(t, err.Error(), `data.integration_type: unknown type "carrier_pigeon"`)

	_, _, err = formats.Create(ctx, tb.Integrations(), []byte(`{"integration_type":"bustest","observes":["a"],"colour":"red"}`))
	assert.ErrorContains(t, err, "colour: unknown field")

	in, _, err := formats.Create(ctx, tb.Integrations(), []byte(`{"data":{"type":"integration","name":"Recorder","integration_type":"bustest","enabled":false,"observes":["order.fulfilled"]}}`))
	require.NoError(t, err)
	assert.Equal(t, bus.Stopped, in.Status)
	assert.Regexp(t, `^[a-z0-9-]{1,50}$`, in.ID)
	assert.Equal(t, "Recorder", in.Name)
}

// What Render shows in any shape, sent back to Create, is the same
// integration: NewStore's shape included, for a type that is neither a
// webhook nor s3 (its sink_type and configuration).
func TestRender_then_Create_round_trips_every_shape(t *testing.T) {
	root := t.TempDir() // where both buses allow paths
	sinksOf := map[string]sinks.Config{
		"webhook": webhook.Config{URL: "https://erp.example.com/hooks", Timeout: sinks.Duration(5 * time.Second)},
		"file":    file.Config{Dir: filepath.Join(root, "erp"), KeyPrefix: "exports"},
	}
	withRoot := func(c *bus.Config) { c.PathRoot = root }
	for _, f := range []formats.Format{formats.Sinkbus, formats.ElasticPath, formats.NewStore} {
		for typ, sink := range sinksOf {
			t.Run(string(f)+"/"+typ, func(t *testing.T) {
				from, to := bustest.New(t, withRoot), bustest.New(t, withRoot)
				in, err := from.Integrations().Create(ctx, bus.Integration{
					ID: "x", Name: "X", Observes: []string{"order.*"}, Sink: sink, OrderKey: "tenant",
				})
				require.NoError(t, err)
				obj, err := formats.Render(f, in, "https://shop.example.com/api")
				require.NoError(t, err)
				body, err := json.Marshal(obj)
				require.NoError(t, err)
				if typ == "file" { // one sink per directory
					require.NoError(t, from.Integrations().Delete(ctx, "x"))
				}
				got, shape, err := formats.Create(ctx, to.Integrations(), body)
				require.NoError(t, err, "%s", body)
				assert.Equal(t, f, shape)
				assert.Equal(t, in.Type(), got.Type())
				assert.Equal(t, in.Observes, got.Observes)
				assert.Equal(t, in.OrderKey, got.OrderKey)
				assert.Equal(t, in.Sink, got.Sink)
			})
		}
	}
}
