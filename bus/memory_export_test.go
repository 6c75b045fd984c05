package bus

import "github.com/sinkbus/sinkbus/replay"

// JournalOf returns the bus's journal, for tests that save its cursors or
// look at its storage.
func JournalOf(b *Bus) *replay.Journal { return b.journal }
