package filter

import (
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sinkbus/sinkbus/sinks"
)

// Middleware drops the messages f does not match before they reach the
// handler. It reads the event name from the sinks.MetaName metadata and the
// JSON payload from msg.Payload. A dropped message is handed to onSkip
// (nil: nothing) and acked: the handler returns no error, so the router
// never redelivers it. An event whose payload is not valid JSON, when f
// needs the payload, is dropped too, so it cannot hold up the others.
func Middleware(f *Filter, onSkip func(msg *message.Message)) message.HandlerMiddleware {
	return func(next message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			if !f.Match(msg.Metadata.Get(sinks.MetaName), msg.Payload) {
				if onSkip != nil {
					onSkip(msg)
				}
				return nil, nil
			}
			return next(msg)
		}
	}
}
