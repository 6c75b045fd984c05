package sqs_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/sinkbus/sinkbus/sinks/sqs"
)

// The batching decision counts the callers that are there, not the
// env.Concurrency the bus may reach: a batch that waited for absent callers
// would wait its whole BatchWait every time.
func TestBatchReady_counts_the_callers_that_are_there(t *testing.T) {
	tests := []struct {
		name                         string
		callers, pending, busy, owed int
		ready                        bool
	}{
		{"a lone send goes at once", 8, 1, 0, 0, true},
		{"all callers joined", 8, 8, 0, 0, true},
		{"callers of the last batch are on their way back", 8, 3, 0, 5, false},
		{"fewer callers than the concurrency, all joined", 8, 3, 0, 0, true},
		{"those in flight fit in the same request: wait for them", 8, 5, 3, 0, false},
		{"those in flight would not fit: go", 16, 2, 10, 0, true},
		{"those in flight would not fit, but others are coming back", 16, 2, 10, 4, false},
		{"callers expected back count no more than the concurrency", 8, 8, 0, 8, true},
		{"the most callers there can be, all joined or in flight", 16, 6, 10, 9, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.ready, sqs.BatchReady(tt.callers, tt.pending, tt.busy, tt.owed),
				fmt.Sprintf("callers=%d pending=%d busy=%d owed=%d", tt.callers, tt.pending, tt.busy, tt.owed))
		})
	}
}
