package middleware

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// While a write of one integration is under way (held here inside the
// change, where the store's writer computes and writes it), its events can
// be listed, another change of it queues behind, and other integrations
// write on.
func TestFileRejected_a_write_under_way_holds_up_only_its_own_writes(t *testing.T) {
	s, err := OpenFileRejected(t.TempDir(), 0)
	require.NoError(t, err)
	defer s.Close()
	_, err = s.Put("a", RejectedEvent{EventID: "a1"})
	require.NoError(t, err)

	entered, release := make(chan struct{}), make(chan struct{})
	held := make(chan error, 1)
	go func() {
		_, err := s.files.change("a", func(st rejectedState, seg uint64) (rejectedState, []byte, any, error) {
			close(entered)
			<-release
			next, _ := st.put(RejectedEvent{EventID: "a2"}, seg, s.size)
			return next, encodeRejected(rejectedRecord{Put: &RejectedEvent{EventID: "a2"}}), nil, nil
		})
		held <- err
	}()
	<-entered

	done := make(chan struct{})
	go func() {
		defer close(done)
		list, err := s.List("a")
		assert.NoError(t, err)
		assert.Len(t, list, 1, "what was last written")
		_, err = s.Get("a", "a1")
		assert.NoError(t, err)
		_, err = s.Put("b", RejectedEvent{EventID: "b1"})
		assert.NoError(t, err, "another integration writes on")
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a listing, or another integration's write, waited for the write under way")
	}
	queued := make(chan error, 1)
	go func() {
		_, err := s.Put("a", RejectedEvent{EventID: "a3"})
		queued <- err
	}()
	close(release)
	require.NoError(t, <-held)
	require.NoError(t, <-queued)
	list, err := s.List("a")
	require.NoError(t, err)
	assert.Len(t, list, 3)
}
