package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The example is part of the README's set-up: it must run to the end and
// deliver what it says, to every destination, nothing refused or rejected.
func TestQuickstart_delivers_what_it_shows(t *testing.T) {
	var out bytes.Buffer
	sum, err := run(&out)
	require.NoError(t, err, out.String())

	assert.Zero(t, sum.Refused, "webhook requests refused by the receiver")
	assert.Empty(t, sum.Rejected, "rejected events per integration")

	live := func(name, tenant string) delivery { return delivery{Name: name, Tenant: tenant} }
	assert.ElementsMatch(t, []delivery{
		live("order.fulfilled", "acme"), // o-1, live
		live("order.fulfilled", "acme"), // o-2, caught up after the stop
		live("order.fulfilled", "globex"),
		{Name: "order.fulfilled", Tenant: "acme", Replayed: true}, // o-1 again, from the replay
	}, sum.Received["send-shipped-email"])
	assert.ElementsMatch(t, []delivery{live("order.created", "acme"), live("order.fulfilled", "acme")},
		sum.Received["big-orders"], "the orders over 100 only")
	assert.Equal(t, []delivery{live("cart.updated", "acme")}, sum.Received["cart-mailer"])
	assert.Len(t, sum.Received, 3, "no other destination")
	assert.Equal(t, map[string]int{"acme": 4, "globex": 1}, sum.Exported, "order events exported per tenant")

	assert.Contains(t, out.String(), "order.fulfilled (replayed)")
	assert.Contains(t, out.String(), "\ndone\n")
}
