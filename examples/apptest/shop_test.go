package apptest_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/bustest"
	"github.com/sinkbus/sinkbus/examples/apptest"
)

// What the shop publishes reaches the integrations that observe it.
func TestShop_PlaceOrder_publishes_order_created(t *testing.T) {
	tb := bustest.New(t)
	orders := tb.Record("order.*")
	require.NoError(t, apptest.Shop{Bus: tb}.PlaceOrder(context.Background(), "o-1", 42))

	got := orders.WaitFor(t, 1)
	assert.Equal(t, "order.created", got[0].Name)
	assert.JSONEq(t, `{"order_id":"o-1","total":42}`, string(got[0].Payload))
}

// A destination that answers 503 gets the event again after the backoff:
// the test moves the bus's clock instead of sleeping.
func TestShop_event_reaches_a_destination_that_was_down(t *testing.T) {
	tb := bustest.New(t)
	erp := tb.NewSinkIntegration(bus.Integration{ID: "erp", Observes: []string{"order.*"}})
	erp.FailNext(1, 503)
	require.NoError(t, apptest.Shop{Bus: tb}.PlaceOrder(context.Background(), "o-1", 42))

	require.NoError(t, tb.Clock.BlockUntil(context.Background(), 1)) // the retry waits
	tb.Clock.Advance(time.Minute)
	erp.WaitFor(t, 1)
	assert.Equal(t, 2, erp.Attempts())
}

// The confirmation handler retries a mail server that fails, and rejects
// an address that does not exist, where the application can list it.
func TestHandleConfirmations_retries_and_rejects(t *testing.T) {
	tb := bustest.New(t)
	var mu sync.Mutex
	var sent []string
	answers := []error{errors.New("mail server busy"), nil, apptest.ErrNoSuchAddress}
	require.NoError(t, apptest.HandleConfirmations(tb.Bus, func(_ context.Context, _, subject string) error {
		mu.Lock()
		defer mu.Unlock()
		err := answers[0]
		answers = answers[1:]
		if err == nil {
			sent = append(sent, subject)
		}
		return err
	}))
	shop := apptest.Shop{Bus: tb}
	require.NoError(t, shop.PlaceOrder(context.Background(), "o-1", 42))
	require.NoError(t, tb.Clock.BlockUntil(context.Background(), 1))
	tb.Clock.Advance(time.Minute)
	tb.MustWaitDelivered() // every integration settled what was published so far: no polling
	mu.Lock()
	assert.Equal(t, []string{"Your order o-1"}, sent)
	mu.Unlock()

	require.NoError(t, shop.PlaceOrder(context.Background(), "o-2", 10))
	tb.MustWaitDelivered()
	rejected, err := tb.Integrations().Rejected(context.Background(), "confirmations")
	require.NoError(t, err)
	require.Len(t, rejected, 1)
	assert.Equal(t, "o-2-created", rejected[0].EventID)
}
