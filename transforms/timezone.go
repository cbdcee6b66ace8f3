package transforms

import (
	"fmt"
	"math"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// LocalCounts count the wall-clock times a conversion could not read as
// one instant without a rule of its own: see LocalToInstantCounted.
type LocalCounts struct {
	// Nonexistent times fall in a spring-forward gap: they were never
	// shown on a clock of the zone.
	Nonexistent int64
	// Ambiguous times fall in an autumn overlap: they were shown twice.
	Ambiguous int64
}

// Add adds o to c.
func (c *LocalCounts) Add(o LocalCounts) {
	c.Nonexistent += o.Nonexistent
	c.Ambiguous += o.Ambiguous
}

// LocalToInstant is LocalToInstantCounted without the counts.
func LocalToInstant(mem memory.Allocator, in arrow.Array, loc *time.Location) (arrow.Array, error) {
	return LocalToInstantCounted(mem, in, loc, nil)
}

// LocalToInstantCounted reads a timestamp column without a time zone
// (wall-clock times, Parquet's isAdjustedToUTC=false) as local times in loc
// and returns the same moments as UTC instants (a timestamp type with time
// zone "UTC"). A wall-clock time that a daylight-saving change makes
// nonexistent or ambiguous is read with the UTC offset in effect before the
// change: a time in a spring-forward gap moves forward by the gap's length
// (02:30 on a day New York skips 02:00-03:00 is 03:30 EDT), and a time in
// an autumn overlap is its earlier occurrence (01:30 on the day New York
// repeats 01:00-02:00 is 01:30 EDT). Both are counted into c when c is not
// nil. An instant beyond the range of int64 ticks saturates (it is then
// in the far future or past, never wrapped around).
func LocalToInstantCounted(mem memory.Allocator, in arrow.Array, loc *time.Location, c *LocalCounts) (arrow.Array, error) {
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
	z := zoneReader{loc: loc}
	perSec := int64(time.Second) / int64(tt.Unit.Multiplier())
	var counts LocalCounts
	for i, v := range ts.TimestampValues() {
		if ts.IsNull(i) {
			continue
		}
		// the ticks count wall-clock time since 1970-01-01T00:00 local
		wall := floorDiv(int64(v), perSec)
		off, kind := z.offset(wall)
		switch kind {
		case localNonexistent:
			counts.Nonexistent++
		case localAmbiguous:
			counts.Ambiguous++
		}
		dst[i] = subSaturating(int64(v), off, perSec)
	}
	if c != nil {
		c.Add(counts)
	}
	return finishFixed(valid, outType, in, vals), nil
}

// subSaturating returns v - off*perSec, clamped to the int64 range.
func subSaturating(v, off, perSec int64) int64 {
	d := off * perSec // |off| < 1 day: no overflow for any unit
	switch {
	case d > 0 && v < math.MinInt64+d:
		return math.MinInt64
	case d < 0 && v > math.MaxInt64+d:
		return math.MaxInt64
	}
	return v - d
}

type localKind uint8

const (
	localNormal localKind = iota
	localNonexistent
	localAmbiguous
)

// zoneReader finds the UTC offset of wall-clock seconds in one zone,
// remembering the last zone period found: most values of a column fall in
// one period, and then need no lookup.
type zoneReader struct {
	loc *time.Location
	// wall seconds in [lo, hi) are in one period of offset off, more than a
	// day from either end of it
	lo, hi, off int64
	cached      bool
}

// transitionReach bounds how far a wall-clock reading is from the instant
// of the same digits (offsets span -12 h to +14 h): a wall time farther
// than it from a transition is unaffected by it.
const transitionReach = 26 * 3600

// probeLimit bounds the wall seconds probed: about 35 million years.
const probeLimit = 1 << 50

// offset returns the offset (in seconds, east of UTC) to subtract from wall
// seconds, and whether the wall time is normal, nonexistent or ambiguous.
func (z *zoneReader) offset(wall int64) (int64, localKind) {
	if z.cached && wall >= z.lo && wall < z.hi {
		return z.off, localNormal
	}
	// far beyond any zone rule (and int64 seconds' overflow): the probes
	// need only the zone's offset there
	wall = max(min(wall, probeLimit), -probeLimit)
	// the offsets a day before and a day after: a transition in between
	// is one of the zone's daylight-saving changes (or a change of its
	// standard offset), and the wall time may fall in its gap or overlap
	before := zoneOffset(wall-86400, z.loc)
	after := zoneOffset(wall+86400, z.loc)
	if before == after {
		t := time.Unix(wall-before, 0).In(z.loc)
		start, end := t.ZoneBounds()
		z.cached, z.off = true, before
		z.lo, z.hi = math.MinInt64, int64(math.MaxInt64)
		if !start.IsZero() {
			z.lo = start.Unix() + before + transitionReach
		}
		if !end.IsZero() {
			z.hi = end.Unix() + before - transitionReach
		}
		if wall >= z.lo && wall < z.hi {
			return before, localNormal
		}
		z.cached = false
	}
	validBefore := zoneOffset(wall-before, z.loc) == before
	validAfter := zoneOffset(wall-after, z.loc) == after
	switch {
	case validBefore && validAfter && before != after:
		return before, localAmbiguous
	case validBefore:
		return before, localNormal
	case validAfter:
		return after, localNormal
	}
	return before, localNonexistent
}

// zoneOffset returns the offset of loc, in seconds east of UTC, at the
// instant wall seconds read as UTC (for a probe near a wall time).
func zoneOffset(unix int64, loc *time.Location) int64 {
	_, off := time.Unix(unix, 0).In(loc).Zone()
	return int64(off)
}
