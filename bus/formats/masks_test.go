package formats_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/formats"
	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/sqs"
	"github.com/sinkbus/sinkbus/sinks/stomp"
	"github.com/sinkbus/sinkbus/sinks/webhook"
)

// A mask has no stored secret to stand for at creation: stored as it is,
// the stars would become the credential. Elastic Path's SQS response,
// sent back as a request, is refused naming both starred credentials; so is
// a masked value from Go.
func TestCreate_refuses_masked_secrets(t *testing.T) {
	tb, _ := savingBus(t)
	body, err := os.ReadFile(filepath.Join("..", "api", "testdata", "elastic_path_aws_sqs_response.json"))
	require.NoError(t, err)
	_, _, err = formats.Create(ctx, tb.Integrations(), body)
	require.ErrorIs(t, err, bus.ErrInvalid)
	assert.Equal(t, []string{"data.configuration.aws_access_key_id", "data.configuration.aws_secret_access_key"}, fieldsOf(err))
	assert.Contains(t, err.Error(), "masked")

	for _, cfg := range []sinks.Config{
		stomp.Config{Addresses: []string{"stomp://mq.example.com"}, Destination: "/queue/q", Username: "u", Password: "****"},
		webhook.Config{URL: "https://erp.example.com/hooks", Headers: map[string]string{"X-Api-Key": "****abcd"}},
	} {
		_, err := tb.Integrations().Create(ctx, bus.Integration{Sink: cfg})
		require.ErrorIs(t, err, bus.ErrInvalid, cfg.Type())
	}
	list, err := tb.Integrations().List(ctx)
	require.NoError(t, err)
	assert.Empty(t, list)
}

// On update, a value that masks the stored one (stars, then nothing or the
// stored value's end, as Elastic Path shows it) keeps the stored one; a
// mask of something else is refused, naming the field.
func TestUpdate_keeps_only_masks_of_the_stored_secret(t *testing.T) {
	tb, dir := savingBus(t)
	stored := sqs.Config{URL: "https://sqs.eu-west-1.amazonaws.com/123456789/epcc-external-queue",
		AccessKeyID: "ASIAJLVYNHUWCPKOPSYQ", SecretAccessKey: "mgJteE7dZgSLC2eo2vKsAUWRSnchrWzCRnoDpUSJ", Region: "eu-west-1"}
	tb.Create(bus.Integration{ID: "sqs", Sink: stored, Status: bus.Stopped})

	// Elastic Path's response, with the id of the integration, sent back.
	body, err := os.ReadFile(filepath.Join("..", "api", "testdata", "elastic_path_aws_sqs_response.json"))
	require.NoError(t, err)
	var doc map[string]map[string]any
	require.NoError(t, json.Unmarshal(body, &doc))
	doc["data"]["id"] = "sqs"
	body, err = json.Marshal(doc)
	require.NoError(t, err)
	_, _, err = formats.Update(ctx, tb.Integrations(), "sqs", body)
	require.NoError(t, err)
	saved := savedSink(t, tb, dir, "sqs").(*sqs.Config)
	assert.Equal(t, stored.AccessKeyID, saved.AccessKeyID)
	assert.Equal(t, stored.SecretAccessKey, saved.SecretAccessKey)

	_, _, err = formats.Update(ctx, tb.Integrations(), "sqs", []byte(`{"integration_type":"aws_sqs","configuration":{
		"url":"`+stored.URL+`","aws_access_key_id":"****PSYQ","aws_secret_access_key":"****XXXX"}}`))
	require.ErrorIs(t, err, bus.ErrInvalid)
	assert.Equal(t, []string{"configuration.aws_secret_access_key"}, fieldsOf(err))
	assert.Equal(t, stored.SecretAccessKey, savedSink(t, tb, dir, "sqs").(*sqs.Config).SecretAccessKey)
}
