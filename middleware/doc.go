// Package middleware is the delivery chain of sinkbus: the Watermill
// middlewares every sink and in-process handler is called through, and the
// stores they write to (the integration log and the rejected events).
//
// A Chain composes them per integration in one fixed order, outermost first:
//
//	Reject ▸ Retry ▸ Breaker ▸ Timeout ▸ Recoverer ▸ sink
//
// The chain keeps sinkbus's promise that nothing is lost silently. Each
// attempt's outcome is classified once, by the sink (sinks.Classify):
// delivered, retryable (with an optional Retry-After) or permanent. A
// retryable failure is retried with exponential backoff; a permanent one, or
// one still failing after the retry policy's limits, goes to the rejected
// store with its reason and the message is acknowledged. The circuit
// breaker counts consecutive failed attempts of the integration; when it
// opens, deliveries pause (they wait, they are neither dropped nor nacked in
// a loop) until a probe succeeds. When the message's context is cancelled
// (the bus stops the integration), the chain returns the context's error:
// the router nacks and the event stays in the journal for later.
//
// Each middleware is usable alone, in Watermill's shapes: Recoverer is a
// plain middleware, Timeout a factory, Retry and Reject config structs with a
// Middleware method, Breaker an object with one.
//
// Everything that waits uses a clock.Clock, so tests drive time with
// clock.Fake.
package middleware
