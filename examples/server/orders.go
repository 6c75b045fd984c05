package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/sinkbus/sinkbus/bus"
)

// Order is the shop's order, and the payload of its order.* events.
type Order struct {
	ID       string    `json:"id"`
	Customer string    `json:"customer"`
	Items    []Item    `json:"items"`
	Total    float64   `json:"total"`
	Status   string    `json:"status"` // created, fulfilled, cancelled
	Created  time.Time `json:"created_at"`
	Updated  time.Time `json:"updated_at"`
}

// Item is one line of an order.
type Item struct {
	SKU      string  `json:"sku"`
	Quantity int     `json:"quantity"`
	Price    float64 `json:"price"`
}

// orders is the shop's order book, in memory, publishing an event for
// every change: order.created, order.fulfilled, order.cancelled.
type orders struct {
	b      *bus.Bus
	tenant string

	mu   sync.Mutex
	byID map[string]*Order
}

func newOrders(b *bus.Bus, tenant string) *orders {
	return &orders{b: b, tenant: tenant, byID: make(map[string]*Order)}
}

func (o *orders) routes(mux *http.ServeMux) {
	mux.HandleFunc("POST /orders", o.create)
	mux.HandleFunc("GET /orders/{id}", o.get)
	mux.HandleFunc("POST /orders/{id}/fulfil", o.transition("fulfilled", "order.fulfilled"))
	mux.HandleFunc("POST /orders/{id}/cancel", o.transition("cancelled", "order.cancelled"))
}

func (o *orders) create(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Customer string `json:"customer"`
		Items    []Item `json:"items"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		reply(w, http.StatusBadRequest, map[string]string{"error": "invalid order: " + err.Error()})
		return
	}
	if req.Customer == "" || len(req.Items) == 0 {
		reply(w, http.StatusBadRequest, map[string]string{"error": "an order needs a customer and at least one item"})
		return
	}
	now := time.Now().UTC()
	ord := &Order{ID: "ord-" + watermill.NewShortUUID(), Customer: req.Customer, Items: req.Items,
		Status: "created", Created: now, Updated: now}
	for _, it := range req.Items {
		if it.SKU == "" || it.Quantity <= 0 || it.Price < 0 {
			reply(w, http.StatusBadRequest, map[string]string{"error": "each item needs a sku, a positive quantity and a price"})
			return
		}
		ord.Total += float64(it.Quantity) * it.Price
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	// The event is durable before the order exists: nothing the
	// integrations should hear of can be lost.
	if err := o.publish(r, "order.created", ord); err != nil {
		reply(w, http.StatusServiceUnavailable, map[string]string{"error": "cannot record the order: " + err.Error()})
		return
	}
	o.byID[ord.ID] = ord
	reply(w, http.StatusCreated, ord)
}

func (o *orders) get(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	defer o.mu.Unlock()
	ord, ok := o.byID[r.PathValue("id")]
	if !ok {
		reply(w, http.StatusNotFound, map[string]string{"error": "no such order"})
		return
	}
	reply(w, http.StatusOK, ord)
}

// transition moves a created order to status and publishes event.
func (o *orders) transition(status, event string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		defer o.mu.Unlock()
		ord, ok := o.byID[r.PathValue("id")]
		if !ok {
			reply(w, http.StatusNotFound, map[string]string{"error": "no such order"})
			return
		}
		if ord.Status != "created" {
			reply(w, http.StatusConflict, map[string]string{"error": fmt.Sprintf("the order is %s already", ord.Status)})
			return
		}
		next := *ord
		next.Status, next.Updated = status, time.Now().UTC()
		if err := o.publish(r, event, &next); err != nil {
			reply(w, http.StatusServiceUnavailable, map[string]string{"error": "cannot record the change: " + err.Error()})
			return
		}
		*ord = next
		reply(w, http.StatusOK, ord)
	}
}

func (o *orders) publish(r *http.Request, name string, ord *Order) error {
	payload, err := json.Marshal(ord)
	if err != nil {
		return err
	}
	err = o.b.Publish(r.Context(), bus.Event{Name: name, Tenant: o.tenant, Payload: payload})
	if errors.Is(err, bus.ErrClosed) {
		return errors.New("the shop is shutting down")
	}
	return err
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
