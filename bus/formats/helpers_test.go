package formats_test

import (
	"context"
	"errors"

	"github.com/sinkbus/sinkbus/field"
	_ "github.com/sinkbus/sinkbus/sinks/all" // the documented bodies name every built-in type
)

var ctx = context.Background()

// fieldsOf lists the fields an error names, in order.
func fieldsOf(err error) []string {
	var out []string
	for _, e := range field.Errors(err) {
		var fe *field.Error
		if errors.As(e, &fe) && fe.Field != "" {
			out = append(out, fe.Field)
		}
	}
	return out
}

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
