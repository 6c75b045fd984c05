package bus_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/bustest"
)

// Closing a bus with attempts under way is what every deploy does: the
// events are delivered again after the restart, and nothing of it is an
// error to page anyone about. Attempts waiting out a backoff, attempts
// running past the stop grace and events waiting behind a busy order key
// all end without an error-level log line.
func TestBus_Close_with_attempts_in_flight_logs_no_error(t *testing.T) {
	for _, dataDir := range []bool{false, true} {
		t.Run(fmt.Sprintf("data_dir=%v", dataDir), func(t *testing.T) {
			logs := newLogRecords()
			tb := bustest.New(t, func(c *bus.Config) {
				c.Logger = slog.New(logs)
				c.StopGrace = 50 * time.Millisecond
				if dataDir {
					c.DataDir = t.TempDir()
				}
			})

			failing := tb.NewSinkIntegration(bus.Integration{ID: "failing"})
			failing.FailNext(1000, 503) // every event waits out a backoff on the test's clock

			started := make(chan string, 10)
			require.NoError(t, tb.Handle("stuck", []string{"*"}, func(ctx context.Context, e bus.Event) error {
				started <- e.ID
				<-ctx.Done() // past the stop grace
				return ctx.Err()
			}, func(in *bus.Integration) { in.OrderKey = "tenant" })) // one at a time: the others wait behind it

			for i := range 4 {
				tb.MustPublish(bus.Event{ID: fmt.Sprint("e", i), Name: "order.created", Tenant: "acme"})
			}
			require.Eventually(t, func() bool { return failing.Attempts() >= 4 }, 10*time.Second, time.Millisecond)
			select {
			case <-started:
			case <-time.After(10 * time.Second):
				t.Fatal("the stuck handler was not called")
			}

			require.NoError(t, tb.Close())
			logs.mu.Lock()
			defer logs.mu.Unlock()
			for _, r := range *logs.recs {
				if r.Level >= slog.LevelError {
					assert.Fail(t, "error logged while closing", "%s", r.Message)
				}
			}
		})
	}
}
