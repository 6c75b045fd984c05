// Package all registers every built-in sink type (webhook, aws_sqs, stomp,
// file, s3) in the default registry, for programs that take integrations of
// any type as JSON (through the management API, say):
//
//	import _ "github.com/sinkbus/sinkbus/sinks/all"
//
// A program that needs only some types imports their packages instead
// (sinks/webhook, ...) and links only those: the bus itself imports no
// concrete sink.
package all

import (
	_ "github.com/sinkbus/sinkbus/sinks/file"    // registers "file"
	_ "github.com/sinkbus/sinkbus/sinks/s3"      // registers "s3"
	_ "github.com/sinkbus/sinkbus/sinks/sqs"     // registers "aws_sqs"
	_ "github.com/sinkbus/sinkbus/sinks/stomp"   // registers "stomp"
	_ "github.com/sinkbus/sinkbus/sinks/webhook" // registers "webhook"
)
