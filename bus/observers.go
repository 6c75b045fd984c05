package bus

import (
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sinkbus/sinkbus/middleware"
	"github.com/sinkbus/sinkbus/replay/segments"
)

// Observers returns an Observer that tells each of list, in order, what it
// is told: Config.Observer takes one, and an application may want the
// metrics (bus/metrics) and the admin page's counts (bus/admin) both. Nil
// entries are left out. When every one of list is a SkipCounter, so is the
// result: skipped events stay counts, never messages.
func Observers(list ...Observer) Observer {
	var out observers
	counting := true
	for _, o := range list {
		if o != nil {
			out = append(out, o)
			_, ok := o.(SkipCounter)
			counting = counting && ok
		}
	}
	if counting {
		return countingObservers{out}
	}
	return out
}

// countingObservers is observers whose members all count skipped events.
type countingObservers struct{ observers }

func (os countingObservers) SkippedEvents(id, typ string, n int) {
	for _, o := range os.observers {
		o.(SkipCounter).SkippedEvents(id, typ, n)
	}
}

type observers []Observer

func (os observers) Attempted(typ string, a middleware.Attempt) {
	for _, o := range os {
		o.Attempted(typ, a)
	}
}

func (os observers) Rejected(id, typ string, e middleware.RejectedEvent) {
	for _, o := range os {
		o.Rejected(id, typ, e)
	}
}

func (os observers) Skipped(id, typ string, msg *message.Message) {
	for _, o := range os {
		o.Skipped(id, typ, msg)
	}
}

func (os observers) SkippedWhileOpen(id, typ string, msg *message.Message) {
	for _, o := range os {
		o.SkippedWhileOpen(id, typ, msg)
	}
}

func (os observers) LostToRetention(id, typ string, lost uint64) {
	for _, o := range os {
		o.LostToRetention(id, typ, lost)
	}
}

func (os observers) Throttled(id, typ string, wait time.Duration) {
	for _, o := range os {
		o.Throttled(id, typ, wait)
	}
}

func (os observers) JournalDamaged(d segments.Damage) {
	for _, o := range os {
		o.JournalDamaged(d)
	}
}

func (os observers) JournalSynced(s segments.Synced) {
	for _, o := range os {
		o.JournalSynced(s)
	}
}
