package bus

import (
	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/file"
	"github.com/sinkbus/sinkbus/sinks/s3"
	"github.com/sinkbus/sinkbus/sinks/sqs"
	"github.com/sinkbus/sinkbus/sinks/stomp"
	"github.com/sinkbus/sinkbus/sinks/webhook"
)

// DefaultSinks returns a registry of the built-in integration types:
// webhook, aws_sqs, stomp, file, s3, and the in-process handler. Add your own with Register before
// passing it in Config.Sinks.
func DefaultSinks() *sinks.Registry {
	return sinks.NewRegistry(
		webhook.Type,
		sqs.Type,
		stomp.Type,
		file.Type,
		s3.Type,
		handlerTypeEntry,
	)
}
