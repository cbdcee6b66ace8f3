package lists

import (
	"math"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
)

// TestWithdrawalMicrosSaturate: a consent list's withdrawal time reads as
// microseconds exactly within their range and clamped beyond it, in every
// unit. Before, milliseconds at the end of their range wrapped around into
// the past: a withdrawal dated there withdrew consent for every row.
func TestWithdrawalMicrosSaturate(t *testing.T) {
	at := time.Date(2026, 6, 1, 8, 30, 0, 123456789, time.UTC)
	cases := []struct {
		name string
		v    int64
		unit arrow.TimeUnit
		want int64
	}{
		{"ms", at.UnixMilli(), arrow.Millisecond, at.UnixMilli() * 1000},
		{"us", at.UnixMicro(), arrow.Microsecond, at.UnixMicro()},
		{"ns, rounded down", at.UnixNano(), arrow.Nanosecond, at.UnixMicro()},
		{"ns before 1970, rounded down", -1, arrow.Nanosecond, -1},
		{"ms at the end of the range", math.MaxInt64, arrow.Millisecond, math.MaxInt64},
		{"ms at the start of the range", math.MinInt64, arrow.Millisecond, math.MinInt64},
		{"ms past the microseconds' range", math.MaxInt64 / 1000 * 2, arrow.Millisecond, math.MaxInt64},
		{"ns at the end of the range", math.MaxInt64, arrow.Nanosecond, math.MaxInt64 / 1000},
		{"us at the start of the range", math.MinInt64, arrow.Microsecond, math.MinInt64},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := withdrawalMicros(arrow.Timestamp(c.v), c.unit); got != c.want {
				t.Errorf("withdrawalMicros(%d %s) = %d, want %d", c.v, c.unit, got, c.want)
			}
		})
	}
}
