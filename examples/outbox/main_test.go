package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/internal/pgtest"
)

// Against PostgreSQL: the committed order's event arrives, the rolled back
// one's never does.
func TestOutboxExample_delivers_the_committed_order_only(t *testing.T) {
	url, schema := pgtest.URL(t), pgtest.Schema(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, run(ctx, &out, url, schema))
	assert.Contains(t, out.String(), "committed with its event")
	assert.Contains(t, out.String(), "received order.created o-")
	assert.NotContains(t, out.String(), "-cancelled {", "the rolled back order, placed first, is not delivered")
}
