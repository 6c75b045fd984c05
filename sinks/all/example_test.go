package all_test

import (
	"fmt"

	"github.com/sinkbus/sinkbus/sinks"
	_ "github.com/sinkbus/sinkbus/sinks/all"
)

// Importing sinks/all makes every built-in type known to the default
// registry, which a bus uses when its Config names no registry.
func Example() {
	fmt.Println(sinks.DefaultRegistry().Names())
	// Output: [aws_sqs file s3 stomp webhook]
}
