// Package webhook is the HTTP webhook sink of sinkbus: a Watermill
// message.Publisher that POSTs each event as JSON to one URL, and the
// receiver side that verifies what it sent.
//
// Requests carry Standard Webhooks signatures by default (webhook-id,
// webhook-timestamp, webhook-signature: "v1,<base64 HMAC-SHA256 of
// id.timestamp.body>"), or a single hex HMAC header, an
// "Authorization: Bearer" API key, and custom headers. The body is the
// sinkbus envelope or a CloudEvents 1.0 event. Every request also names the
// event (X-Sinkbus-Topic), the attempt (X-Sinkbus-Request-Id, new on each
// attempt, while webhook-id stays the event id for deduplication), and a
// replayed or re-sent rejected event (X-Sinkbus-Replayed: true).
//
// Secrets: a "whsec_" secret works with every Standard Webhooks library as
// it is. Any other secret signs with its raw bytes, which those libraries
// accept only through their raw-key constructors (Go's NewWebhookRaw,
// ...); their default constructor base64-decodes the secret and then
// refuses every request. Verify and Verifier read both forms.
//
// A 2XX response within the attempt's deadline delivers the event; 408,
// 429, 5XX, network errors and timeouts are retryable, with the receiver's
// Retry-After; every other status is permanent. Inside the bus the delivery
// chain sets each attempt's deadline (Config.Timeout, 30 s by default, or
// the integration's delivery timeout); a message without a deadline gets
// Config.Timeout. Redirects are not followed.
//
// The sink refuses to connect to loopback, private, link-local and other
// internal addresses, checked on the resolved address at dial time (zones
// and IPv4-mapped forms included) by the network guard every sink shares
// (package netguard), unless Config.AllowPrivateNetworks is set; the bus
// accepts that option only where the application allows it
// (bus.Config.AllowPrivateNetworks).
//
// Receivers check requests with Verify, VerifyHMAC or a Verifier and its
// Middleware.
package webhook
