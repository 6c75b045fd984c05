package main

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/internal/testenv"
)

// Against RabbitMQ's STOMP plugin: the events of the order arrive, in
// order, with the sinkbus headers and the envelope as the body.
func TestStompExample_delivers_to_the_queue_in_order(t *testing.T) {
	addr := testenv.Server(t, "SINKBUS_STOMP_RABBITMQ")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	dest := "/queue/sinkbus-test." + watermill.NewShortUUID() // RabbitMQ expires these
	require.NoError(t, run(ctx, &out, addr, os.Getenv("SINKBUS_STOMP_RABBITMQ_USER"), os.Getenv("SINKBUS_STOMP_RABBITMQ_PASS"), dest))

	lines := bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n"))
	require.Len(t, lines, 3)
	assert.Contains(t, string(lines[0]), "received o-1-0 order.created {")
	assert.Contains(t, string(lines[1]), "received o-1-1 order.paid {")
	assert.Contains(t, string(lines[2]), `received o-1-2 order.fulfilled {"id":"o-1-2","name":"order.fulfilled","tenant":"acme"`)
}
