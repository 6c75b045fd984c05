package bus

import "github.com/sinkbus/sinkbus/internal/clock"

// Timer is what Clock.NewTimer returns: the part of *time.Timer the bus
// uses. It lets an application implement Clock with its own time source.
type Timer = clock.Timer
