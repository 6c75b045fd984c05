// Package webhook is the HTTP webhook sink of sinkbus: a Watermill
// message.Publisher that POSTs each event as JSON to one URL, and the
// receiver side that verifies what it sent.
//
// Requests carry Standard Webhooks signatures by default (webhook-id,
// webhook-timestamp, webhook-signature: "v1,<base64 HMAC-SHA256 of
// id.timestamp.body>"), or a single hex HMAC header, an
// "Authorization: Bearer" API key, and custom headers. The body is the
// sinkbus envelope or a CloudEvents 1.0 event.
//
// A 2XX response within the timeout (30 s by default) delivers the event;
// 408, 429, 5XX, network errors and timeouts are retryable, with the
// receiver's Retry-After; every other status is permanent. Redirects are not
// followed. The sink refuses to connect to loopback, private, link-local and
// other internal addresses, checked on the resolved address at dial time,
// unless Config.AllowPrivateNetworks is set.
//
// Receivers check requests with Verify, VerifyHMAC or a Verifier and its
// Middleware.
package webhook
