package transforms

import (
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// LocalToInstant reads a timestamp column without a time zone (wall-clock
// times, Parquet's isAdjustedToUTC=false) as local times in loc and returns
// the same moments as UTC instants (a timestamp type with time zone "UTC").
// A wall-clock time skipped by a daylight-saving jump is read as time.Date
// does (shifted forward); one that occurs twice takes the first occurrence.
func LocalToInstant(mem memory.Allocator, in arrow.Array, loc *time.Location) (arrow.Array, error) {
	ts, ok := in.(*array.Timestamp)
	if !ok {
		return nil, fmt.Errorf("local time: %w %s (takes timestamp)", ErrUnsupportedType, in.DataType())
	}
	tt := ts.DataType().(*arrow.TimestampType)
	if tt.TimeZone != "" {
		return nil, fmt.Errorf("local time: column already has time zone %q", tt.TimeZone)
	}
	outType := &arrow.TimestampType{Unit: tt.Unit, TimeZone: "UTC"}
	valid, vals := newFixedLike(mem, in, arrow.Int64SizeBytes)
	dst := arrow.Int64Traits.CastFromBytes(vals.Bytes())
	for i, v := range ts.TimestampValues() {
		if ts.IsNull(i) {
			continue
		}
		// the ticks count wall-clock time since 1970-01-01T00:00 local
		wall := ticksToTime(int64(v), tt.Unit).UTC()
		y, mo, d := wall.Date()
		h, mi, s := wall.Clock()
		local := time.Date(y, mo, d, h, mi, s, wall.Nanosecond(), loc)
		dst[i] = timeToTicks(local, tt.Unit)
	}
	return finishFixed(valid, outType, in, vals), nil
}
