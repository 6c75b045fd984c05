package s3_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/sinks"
)

// What a consumer of the bucket sees (README, "What a consumer sees"): an
// object of Content-Type application/x-ndjson, one event envelope a line.
func TestS3Sink_objects_are_ndjson_envelopes(t *testing.T) {
	g := sharedGateway(t)
	bucket := g.newBucket(t)
	h := newSink(t, g.config(bucket))
	require.NoError(t, h.sink.Publish("t", event("e1", "acme"), event("e2", "acme")))
	require.NoError(t, h.sink.Close())
	key := h.waitUploaded(t)

	ctx := context.Background()
	head, err := g.client().HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	require.NoError(t, err)
	assert.Equal(t, "application/x-ndjson", aws.ToString(head.ContentType))
	obj, err := g.client().GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	require.NoError(t, err)
	defer obj.Body.Close()
	data, err := io.ReadAll(obj.Body)
	require.NoError(t, err)
	var ids []string
	lines := bufio.NewScanner(bytes.NewReader(data))
	for lines.Scan() {
		var env sinks.Envelope
		require.NoError(t, json.Unmarshal(lines.Bytes(), &env))
		assert.Equal(t, "acme", env.Tenant)
		ids = append(ids, env.ID)
	}
	assert.Equal(t, []string{"e1", "e2"}, ids)
}
