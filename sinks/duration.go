package sinks

import (
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// Duration is a time.Duration that reads and writes JSON as a Go duration
// string ("30s", "1m30s"); a bare number is taken as seconds, as Elastic Path's and NewStore's
// timeouts are.
type Duration time.Duration

// MarshalJSON writes "30s".
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads "30s" or 30.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch x := v.(type) {
	case float64:
		ns := x * float64(time.Second)
		// Beyond ±292 years a float converts to any int64 at all: a huge
		// timeout would become a negative one.
		if math.IsNaN(ns) || ns >= math.MaxInt64 || ns <= math.MinInt64 {
			return fmt.Errorf("is out of range: a duration is at most 292 years")
		}
		*d = Duration(ns)
	case string:
		p, err := time.ParseDuration(x)
		if err != nil {
			return fmt.Errorf("must be a duration such as \"30s\"")
		}
		*d = Duration(p)
	case nil:
		*d = 0
	default:
		return fmt.Errorf("must be a duration such as \"30s\"")
	}
	return nil
}

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
