package segments

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestGatherBounds_scale_with_the_fsync_time_within_limits(t *testing.T) {
	for _, c := range []struct {
		syncTook, gap, total time.Duration
	}{
		{0, minGatherGap, minGatherTotal}, // nothing measured yet
		{20 * time.Microsecond, minGatherGap, minGatherTotal},
		{100 * time.Microsecond, 100 * time.Microsecond, minGatherTotal},
		{250 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond},
		{900 * time.Microsecond, 900 * time.Microsecond, 1800 * time.Microsecond},
		{20 * time.Millisecond, maxGatherGap, maxGatherTotal}, // a disk stalling
	} {
		gap, total := gatherBounds(c.syncTook)
		assert.Equal(t, c.gap, gap, "gap for fsyncs of %s", c.syncTook)
		assert.Equal(t, c.total, total, "total for fsyncs of %s", c.syncTook)
	}
}

func TestTookSync_follows_the_fsync_time_and_smooths_one_outlier(t *testing.T) {
	var tl topicLog
	tl.tookSync(200 * time.Microsecond)
	assert.Equal(t, 200*time.Microsecond, tl.syncTook, "the first fsync sets it")

	tl.tookSync(10 * time.Millisecond)
	assert.Less(t, tl.syncTook, 2*time.Millisecond, "one slow fsync moves it an eighth of the way")

	for range 40 {
		tl.tookSync(time.Millisecond)
	}
	assert.InDelta(t, float64(time.Millisecond), float64(tl.syncTook), float64(20*time.Microsecond),
		"fsyncs that stay slower take it there")
}
