package bus_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/bustest"
	"github.com/sinkbus/sinkbus/bus/ingest"
	"github.com/sinkbus/sinkbus/field"
)

// An event id becomes the Standard Webhooks webhook-id, signed as
// "id.timestamp.body": a '.' in it would make that ambiguous.
func TestBus_Publish_refuses_a_dot_in_the_event_id_naming_the_field(t *testing.T) {
	tb := bustest.New(t)
	sink := tb.Record("**")

	err := tb.Bus.Publish(ctx, bus.Event{ID: "evt.1", Name: "order.created"})
	require.ErrorIs(t, err, bus.ErrInvalidEvent)
	fields := fieldErrors(err)
	assert.Equal(t, []string{"id"}, fieldNames(fields))
	assert.Contains(t, fields[0].Rule, "'.'")

	err = tb.Bus.Publish(ctx, bus.Event{ID: "evt-1", Name: "order.created"}, bus.Event{ID: ".", Name: "order.created"})
	require.ErrorIs(t, err, bus.ErrInvalidEvent)
	assert.Equal(t, []string{"events[1].id"}, fieldNames(fieldErrors(err)), "the batch is refused, naming the event")

	// Ids of every other shape still go through: ULIDs, UUIDs, the starter kit's.
	tb.MustPublish(bus.Event{ID: "01JDQ3ZK6T8Q9V4W5X6Y7Z8A9B", Name: "order.created"},
		bus.Event{ID: "6f1c2a8e-3b4d-4e5f-8a9b-0c1d2e3f4a5b", Name: "order.created"},
		bus.Event{ID: "event_uid_1", Name: "order.created"},
		bus.Event{Name: "order.created"})
	given := []string{"01JDQ3ZK6T8Q9V4W5X6Y7Z8A9B", "6f1c2a8e-3b4d-4e5f-8a9b-0c1d2e3f4a5b", "event_uid_1"}
	var ids, generated []string
	for _, e := range sink.WaitFor(t, 4) { // delivered in any order
		if slices.Contains(given, e.ID) {
			ids = append(ids, e.ID)
		} else {
			generated = append(generated, e.ID)
		}
	}
	assert.ElementsMatch(t, given, ids)
	require.Len(t, generated, 1)
	assert.NotContains(t, generated[0], ".", "generated ids")
}

func fieldErrors(err error) []*field.Error {
	var out []*field.Error
	for _, e := range field.Errors(err) {
		if fe, ok := e.(*field.Error); ok && fe.Field != "" {
			out = append(out, fe)
		}
	}
	return out
}

func fieldNames(fields []*field.Error) []string {
	out := make([]string, len(fields))
	for i, fe := range fields {
		out[i] = fe.Field
	}
	return out
}

// The ingestion webhook uses the sender's uid as the event id: the starter kit's
// uid is published, one with a '.' is a 400 naming data.uid.
func TestIngest_uid_is_the_event_id_and_a_dot_in_it_is_refused(t *testing.T) {
	tb := bustest.New(t)
	sink := tb.Record("be-observer.*")
	h, err := ingest.New(tb.Bus, ingest.Options{Authenticate: ingest.AllowAll()})
	require.NoError(t, err)
	post := func(uid string) *httptest.ResponseRecorder {
		body := `{"data":{"uid":"` + uid + `","event":"be-observer.catalog_product_create","value":{"sku":"24-MB01"}}}`
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/events", strings.NewReader(body)))
		return w
	}

	w := post("event_uid_1")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	got := sink.WaitFor(t, 1)
	assert.Equal(t, "event_uid_1", got[0].ID)
	assert.JSONEq(t, `{"sku":"24-MB01"}`, string(got[0].Payload))

	w = post("event.uid.2")
	require.Equal(t, http.StatusBadRequest, w.Code)
	var resp ingest.Response
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &resp), w.Body.String())
	assert.Contains(t, resp.Response.Message, "data.uid:")
	assert.NotContains(t, resp.Response.Message, "event.uid.2", "values are not quoted back")
}
