// Package middleware is the delivery chain of sinkbus: the Watermill
// middlewares every sink and in-process handler is called through, and the
// stores they write to (the integration log and the rejected events).
//
// # The chain
//
// This is the one place that documents the chain's order. A Chain composes
// the middlewares per integration in this fixed order, outermost first:
//
//	Reject ▸ Retry ▸ Breaker ▸ Timeout ▸ Recoverer ▸ sink
//
// (The bus runs its filter and its gate in front of the chain: skipped
// events never reach it, and the gate holds the integration's concurrency
// and order key across live delivery, replays and manual retries.) Each
// layer is where it is for a reason:
//
//   - Reject is outermost because only final failures reach it: a
//     permanent failure, or retries exhausted. It stores the event in the
//     rejected store and acknowledges the message.
//   - Retry is outside the Breaker so that the breaker sees every attempt,
//     retries included. It counts consecutive failed attempts, as Commerce
//     Layer does, and it pauses them all while open: a retrying event does
//     not get past an open circuit. Outside Retry, the breaker would count
//     events rather than attempts, and an event already inside it would go
//     on retrying against a destination known to be down.
//   - The Breaker tells Retry which failures are the outage's (they opened
//     the circuit, or found it open). Retry charges those to no event's
//     MaxAttempts, skips the backoff and sends the event straight back to
//     wait for the next probe. Paused time does not count toward
//     MaxElapsedTime. This is why an outage of any length rejects nothing.
//   - Timeout is inside the Breaker and Retry so that it bounds one attempt.
//     Each attempt gets a fresh deadline. Time spent waiting in a backoff or
//     behind an open circuit is not attempt time.
//   - Recoverer is innermost, next to the code that may panic. It turns a
//     panic into a retryable failure that every layer above understands.
//
// The chain keeps sinkbus's promise that nothing is lost silently. Each
// attempt's outcome is classified once, by the sink (sinks.Classify):
// delivered, retryable (with an optional Retry-After) or permanent. When
// the message's context is cancelled, or its integration is stopping, the
// chain returns an error and writes nothing to the rejected store. The
// router nacks, and the event stays in the journal for later.
//
// Each middleware can also be used alone, in one of Watermill's shapes:
// Recoverer is a plain middleware, Timeout a factory, Retry and Reject
// config structs with a Middleware method, and Breaker an object with one.
//
// # Hooks
//
// The hooks (Config.OnWarning, OnStateChange, OnAttempt, OnReject, OnSkip)
// run on the goroutine that delivers an event, in the middle of the
// delivery (OnStateChange may also run on the goroutine of Breaker.Reset).
// Keep them quick: hand slow work, such as sending an e-mail when the
// circuit warns, to another goroutine.
//
// Everything that waits uses a clock.Clock, so tests drive time with
// clock.Fake.
package middleware
