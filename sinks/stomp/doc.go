// Package stomp is the STOMP sink of sinkbus: a Watermill message.Publisher
// that delivers each event into a queue or topic of a STOMP broker (Amazon
// MQ, ActiveMQ, RabbitMQ's STOMP plugin), as Elastic Path's stomp
// integrations do. It runs on go-stomp/v3.
//
// Each event is one SEND of its sinkbus envelope (content-type
// application/json, persistent:true) with the headers sinkbus-id,
// sinkbus-name, sinkbus-tenant and sinkbus-replayed, and the event's
// metadata as further headers (names cleaned; never one STOMP or the broker
// acts on). Every SEND asks for a receipt, and Publish returns nil only once
// the receipt came: a send cut by a dropped connection or a missing receipt
// fails retryably, so the event is delivered at least once.
//
// The sink keeps a pool of connections, since a connection carries one send
// at a time while it waits for the receipt, and fails over as nats.go does:
// a connection that drops, answers ERROR or misses a receipt is redialled on
// the next address of the list; a round in which every address failed, and a
// connection that dropped sooner than ReconnectWait after it came up, are
// followed by a pause of ReconnectWait (plus jitter) that doubles with each
// such round in a row up to MaxReconnectWait; MaxReconnects bounds the
// failed attempts in a row. Options report connects and disconnects, and the
// integration log (sinks.Env.Log) gets ActionConnectionLost,
// ActionConnectionRestored and ActionFailover entries, at most one of each a
// minute.
//
// Failures are classified where they happen: connection failures, timeouts
// and unknown broker errors are retryable; a broker that refuses the
// credentials, the virtual host or the destination, and a TLS certificate
// that does not verify, are permanent (errors.Is(err, sinks.ErrPermanent)),
// with the broker's message in the error.
package stomp
