package transforms

import (
	"math"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// TestFutureTimes: a time later than the latest valid event time (now plus
// the skew) is handled as a NULL time by every on_null mode, in run's
// Retention and in retain's RetainRule, and counted as future.
func TestFutureTimes(t *testing.T) {
	now := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	latest := now.Add(24 * time.Hour)
	cutoff := now.Add(-30 * 24 * time.Hour)
	inRange := now.Add(23 * time.Hour)
	times := []int64{
		inRange.UnixMicro(),                                     // valid
		now.Add(25 * time.Hour).UnixMicro(),                     // future
		time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro(), // future
		math.MaxInt64,      // future
		latest.UnixMicro(), // exactly at the bound: valid
	}
	oldFallback := now.Add(-365 * 24 * time.Hour).UnixMicro()
	cases := []struct {
		name     string
		onNull   string // keep, remove, fallback-old, fallback-new
		keep     []bool
		removedF int64
	}{
		{"keep", "keep", []bool{true, true, true, true, true}, 0},
		{"remove", "remove", []bool{true, false, false, false, true}, 3},
		{"fallback past", "fallback-old", []bool{true, false, false, false, true}, 3},
		{"fallback inside", "fallback-new", []bool{true, true, true, true, true}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mem := checkedMem(t)
			tb := array.NewTimestampBuilder(mem, &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"})
			fbb := array.NewTimestampBuilder(mem, &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"})
			for _, v := range times {
				tb.Append(arrow.Timestamp(v))
				if c.onNull == "fallback-old" {
					fbb.Append(arrow.Timestamp(oldFallback))
				} else {
					fbb.Append(arrow.Timestamp(now.UnixMicro()))
				}
			}
			col, fb := tb.NewArray(), fbb.NewArray()
			tb.Release()
			fbb.Release()
			defer col.Release()
			defer fb.Release()
			fallback := c.onNull == "fallback-old" || c.onNull == "fallback-new"
			fbCut := now.Add(-30 * 24 * time.Hour)

			// deid run and plan
			rule := Retention{Cutoff: cutoff, Latest: latest, OnNullRemove: c.onNull == "remove"}
			var sel Selection
			sel.Reset(len(times))
			var err error
			if fallback {
				rule.FallbackCutoff = fbCut
				err = rule.ApplyFallback(col, fb, &sel)
			} else {
				err = rule.Apply(col, &sel)
			}
			if err != nil {
				t.Fatal(err)
			}
			for i, want := range c.keep {
				if sel.Keeps(i) != want {
					t.Errorf("run: row %d kept %v, want %v", i, sel.Keeps(i), want)
				}
			}
			if got := sel.Removed(ReasonFutureTime); got != c.removedF {
				t.Errorf("run: future_time removed %d, want %d", got, c.removedF)
			}
			if got := sel.Removed(ReasonNullTime) + sel.Removed(ReasonRetention); got != 0 {
				t.Errorf("run: %d rows removed for other reasons", got)
			}

			// deid retain
			rr := RetainRule{Retention: true, Cutoff: cutoff, Latest: latest, OnNullRemove: c.onNull == "remove",
				Fallback: fallback, FallbackCutoff: fbCut}
			fates := make([]Fate, len(times))
			var counts RetainCounts
			var fbCol arrow.Array
			if fallback {
				fbCol = fb
			}
			if err := rr.Decide(col, fbCol, nil, fates, &counts); err != nil {
				t.Fatal(err)
			}
			for i, want := range c.keep {
				if (fates[i] == FateKeep) != want {
					t.Errorf("retain: row %d fate %v, want kept %v", i, fates[i], want)
				}
			}
			wantKept := int64(3) - c.removedF
			if counts.ExpiredFuture != c.removedF || counts.FutureKept != wantKept || counts.ExpiredNull != 0 || counts.NullKept != 0 {
				t.Errorf("retain counts %+v, want %d future expired, %d future kept", counts, c.removedF, wantKept)
			}
		})
	}
}

// TestClassifyFuture: a row group whose largest time may be in the future
// is never settled as "inside" by statistics: its future rows are
// decided (and counted) one by one.
func TestClassifyFuture(t *testing.T) {
	now := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	latest := now.Add(24 * time.Hour)
	cutoff := now.Add(-30 * 24 * time.Hour)
	us := func(t time.Time) int64 { return t.UnixMicro() }
	cases := []struct {
		name     string
		onRemove bool
		local    bool
		max      int64
		want     Span
	}{
		{"now+23h remove", true, false, us(now.Add(23 * time.Hour)), SpanInside},
		{"now+25h remove", true, false, us(now.Add(25 * time.Hour)), SpanMixed},
		{"2300 remove", true, false, us(time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)), SpanMixed},
		{"int64 max remove", true, false, math.MaxInt64, SpanMixed},
		{"int64 max remove local", true, true, math.MaxInt64, SpanMixed},
		{"int64 max keep", false, false, math.MaxInt64, SpanMixed},
		{"int64 max keep local", false, true, math.MaxInt64, SpanMixed},
		{"now+23h keep", false, false, us(now.Add(23 * time.Hour)), SpanInside},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := RetainRule{Retention: true, Cutoff: cutoff, Latest: latest, OnNullRemove: c.onRemove}
			s := TimeStats{HasMinMax: true, Min: us(now.Add(-24 * time.Hour)), Max: c.max, Unit: arrow.Microsecond, Local: c.local, Nulls: 0, Rows: 10}
			if got := r.Classify(s); got != c.want {
				t.Errorf("Classify = %s, want %s", got, c.want)
			}
		})
	}
	// the lowest value of the range is expired, not wrapped into "inside"
	r := RetainRule{Retention: true, Cutoff: cutoff, Latest: latest}
	s := TimeStats{HasMinMax: true, Min: math.MinInt64, Max: math.MinInt64 + 1, Unit: arrow.Microsecond, Local: true, Rows: 1}
	if got := r.Classify(s); got != SpanExpired {
		t.Errorf("Classify(min int64) = %s, want expired", got)
	}
}

// TestChildrenFutureEventTime: an event dated in the future does not age a
// child into an adult: the age is measured at now.
func TestChildrenFutureEventTime(t *testing.T) {
	now := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	mem := checkedMem(t)
	bb := array.NewDate32Builder(mem)
	tb := array.NewTimestampBuilder(mem, &arrow.TimestampType{Unit: arrow.Second, TimeZone: "UTC"})
	events := []int64{
		now.Add(-time.Hour).Unix(),
		now.Add(23 * time.Hour).Unix(),
		now.Add(25 * time.Hour).Unix(),
		time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC).Unix(),
		math.MaxInt64,
	}
	for _, e := range events {
		bb.Append(arrow.Date32FromTime(time.Date(2016, 1, 1, 0, 0, 0, 0, time.UTC))) // ten today
		tb.Append(arrow.Timestamp(e))
	}
	birth, times := bb.NewArray(), tb.NewArray()
	bb.Release()
	tb.Release()
	defer birth.Release()
	defer times.Release()
	var sel Selection
	sel.Reset(len(events))
	c := Children{Below: 14, At: now, Latest: now.Add(24 * time.Hour)}
	if _, err := c.Apply(birth, times, &sel); err != nil {
		t.Fatal(err)
	}
	for i := range events {
		if sel.Keeps(i) {
			t.Errorf("event %d (%d): a ten-year-old's row was kept", i, events[i])
		}
	}
}
