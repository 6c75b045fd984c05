package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/internal/testenv"
)

// Against the S3 gateway: one NDJSON object per tenant, named by the
// export's key layout, holding that tenant's events.
func TestS3Example_exports_one_file_per_tenant(t *testing.T) {
	st := store{testenv.Server(t, "SINKBUS_S3_ENDPOINT"), os.Getenv("SINKBUS_S3_ACCESS_KEY"), os.Getenv("SINKBUS_S3_SECRET_KEY")}
	var b [6]byte
	_, _ = rand.Read(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bucket := "sinkbus-test-" + hex.EncodeToString(b[:])
	t.Cleanup(func() { removeBucket(st, bucket) })
	var out bytes.Buffer
	require.NoError(t, run(ctx, &out, st, bucket))

	text := out.String()
	assert.Regexp(t, regexp.MustCompile(`(?m)^orders/acme/\d+-data-\w+\.export$`), text)
	assert.Regexp(t, regexp.MustCompile(`(?m)^orders/globex/\d+-data-\w+\.export$`), text)
	assert.Equal(t, 4, bytes.Count(out.Bytes(), []byte(`"name":"order.fulfilled"`)), "every event exported once")
	assert.Contains(t, text, `{"id":"o-2","name":"order.fulfilled","tenant":"globex"`)
}

// removeBucket deletes what the test left in the gateway.
func removeBucket(st store, bucket string) {
	ctx := context.Background()
	c := st.client()
	if list, err := c.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: aws.String(bucket)}); err == nil {
		for _, o := range list.Contents {
			_, _ = c.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String(bucket), Key: o.Key})
		}
	}
	_, _ = c.DeleteBucket(ctx, &awss3.DeleteBucketInput{Bucket: aws.String(bucket)})
}
