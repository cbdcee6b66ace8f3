package transforms

import (
	"math"
	"testing"
	"time"
	_ "time/tzdata" // the zones of these tests, on a host without zoneinfo too

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// TestLocalTimesAroundTransitions: wall-clock times in a spring-forward gap
// move forward by the gap's length, times in an autumn overlap take their
// earlier occurrence, and both are counted; a zone without daylight saving
// counts nothing.
func TestLocalTimesAroundTransitions(t *testing.T) {
	wall := func(y int, mo time.Month, d, h, mi int) time.Time { return time.Date(y, mo, d, h, mi, 0, 0, time.UTC) }
	cases := []struct {
		name       string
		zone       string
		wall       time.Time
		want       time.Time // UTC instant
		kind       localKind
		unitMillis bool
	}{
		{"new york before gap", "America/New_York", wall(2026, 3, 8, 1, 59), wall(2026, 3, 8, 6, 59), localNormal, false},
		{"new york gap start", "America/New_York", wall(2026, 3, 8, 2, 0), wall(2026, 3, 8, 7, 0), localNonexistent, false},
		{"new york in gap", "America/New_York", wall(2026, 3, 8, 2, 30), wall(2026, 3, 8, 7, 30), localNonexistent, true},
		{"new york after gap", "America/New_York", wall(2026, 3, 8, 3, 0), wall(2026, 3, 8, 7, 0), localNormal, false},
		{"new york overlap", "America/New_York", wall(2026, 11, 1, 1, 30), wall(2026, 11, 1, 5, 30), localAmbiguous, false},
		{"new york overlap start", "America/New_York", wall(2026, 11, 1, 1, 0), wall(2026, 11, 1, 5, 0), localAmbiguous, true},
		{"new york after overlap", "America/New_York", wall(2026, 11, 1, 2, 0), wall(2026, 11, 1, 7, 0), localNormal, false},
		{"new york summer", "America/New_York", wall(2026, 7, 1, 12, 0), wall(2026, 7, 1, 16, 0), localNormal, false},
		{"berlin in gap", "Europe/Berlin", wall(2026, 3, 29, 2, 15), wall(2026, 3, 29, 1, 15), localNonexistent, false},
		{"berlin after gap", "Europe/Berlin", wall(2026, 3, 29, 3, 0), wall(2026, 3, 29, 1, 0), localNormal, false},
		{"berlin overlap", "Europe/Berlin", wall(2026, 10, 25, 2, 30), wall(2026, 10, 25, 0, 30), localAmbiguous, false},
		{"berlin after overlap", "Europe/Berlin", wall(2026, 10, 25, 3, 0), wall(2026, 10, 25, 2, 0), localNormal, true},
		{"shanghai march", "Asia/Shanghai", wall(2026, 3, 8, 2, 30), wall(2026, 3, 7, 18, 30), localNormal, false},
		{"shanghai november", "Asia/Shanghai", wall(2026, 11, 1, 1, 30), wall(2026, 10, 31, 17, 30), localNormal, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			loc, err := time.LoadLocation(c.zone)
			if err != nil {
				t.Fatal(err)
			}
			mem := checkedMem(t)
			unit := arrow.Microsecond
			if c.unitMillis {
				unit = arrow.Millisecond
			}
			b := array.NewTimestampBuilder(mem, &arrow.TimestampType{Unit: unit})
			// a normal value first, so that the zone reader's cache is warm
			b.Append(arrow.Timestamp(timeToTicks(wall(2026, 1, 15, 12, 0), unit)))
			b.Append(arrow.Timestamp(timeToTicks(c.wall, unit)))
			in := b.NewArray()
			b.Release()
			defer in.Release()
			var counts LocalCounts
			out, err := LocalToInstantCounted(mem, in, loc, &counts)
			if err != nil {
				t.Fatal(err)
			}
			defer out.Release()
			got := ticksToTime(int64(out.(*array.Timestamp).Value(1)), unit).UTC()
			if !got.Equal(c.want) {
				t.Errorf("%s local in %s = %s, want %s", c.wall.Format("2006-01-02 15:04"), c.zone, got, c.want)
			}
			want := LocalCounts{}
			switch c.kind {
			case localNonexistent:
				want.Nonexistent = 1
			case localAmbiguous:
				want.Ambiguous = 1
			}
			if counts != want {
				t.Errorf("counts %+v, want %+v", counts, want)
			}
		})
	}
}

// TestLocalTimesSaturate: a wall-clock time at the end of the int64 range
// stays in the far future (or past) instead of wrapping around.
func TestLocalTimesSaturate(t *testing.T) {
	loc, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	mem := checkedMem(t)
	for _, unit := range []arrow.TimeUnit{arrow.Second, arrow.Millisecond, arrow.Microsecond, arrow.Nanosecond} {
		b := array.NewTimestampBuilder(mem, &arrow.TimestampType{Unit: unit})
		b.Append(math.MaxInt64)
		b.Append(math.MinInt64)
		in := b.NewArray()
		b.Release()
		out, err := LocalToInstantCounted(mem, in, loc, nil)
		if err != nil {
			t.Fatal(err)
		}
		ts := out.(*array.Timestamp)
		if ts.Value(0) != math.MaxInt64 || ts.Value(1) >= 0 {
			t.Errorf("%s: max -> %d, min -> %d", unit, ts.Value(0), ts.Value(1))
		}
		out.Release()
		in.Release()
	}
}
