package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/internal/testenv"
)

// Against the SQS server: the three events arrive in the queue, with
// their attributes and the envelope as the body.
func TestSQSExample_delivers_to_the_queue(t *testing.T) {
	endpoint := testenv.Server(t, "SINKBUS_SQS_ENDPOINT")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, run(ctx, &out, endpoint, "sinkbus-example-"+strings.ReplaceAll(watermill.NewShortUUID(), "_", "-")))

	for _, want := range []string{"received o-1-0 order.created channel=web", "received o-1-1 order.paid", "received o-1-2 order.fulfilled"} {
		assert.Contains(t, out.String(), want)
	}
	assert.Contains(t, out.String(), `{"id":"o-1-2","name":"order.fulfilled","tenant":"acme"`)
}
