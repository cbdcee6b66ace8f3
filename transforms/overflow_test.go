package transforms

import (
	"fmt"
	"math"
	"math/big"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// instantOf returns the instant of v ticks of unit u (time.Time spans far
// more than any int64 count of ticks).
func instantOf(v int64, u arrow.TimeUnit) time.Time {
	perSec := int64(time.Second) / int64(u.Multiplier())
	sec, rem := v/perSec, v%perSec
	if rem < 0 {
		sec, rem = sec-1, rem+perSec
	}
	return time.Unix(sec, rem*int64(u.Multiplier())).UTC()
}

// bigTicks returns t as ticks of u, rounded up (ceil) or down, without
// overflow: the oracle of CeilTicks and FloorTicks before clamping.
func bigTicks(t time.Time, u arrow.TimeUnit, ceil bool) *big.Int {
	ns := big.NewInt(int64(u.Multiplier()))
	v := new(big.Int).Mul(big.NewInt(t.Unix()), big.NewInt(int64(time.Second)))
	v.Add(v, big.NewInt(int64(t.Nanosecond())))
	q, m := new(big.Int).DivMod(v, ns, new(big.Int)) // Euclidean: floor for a positive divisor
	if ceil && m.Sign() != 0 {
		q.Add(q, big.NewInt(1))
	}
	return q
}

func clampBig(v *big.Int) int64 {
	switch {
	case v.Cmp(big.NewInt(math.MaxInt64)) > 0:
		return math.MaxInt64
	case v.Cmp(big.NewInt(math.MinInt64)) < 0:
		return math.MinInt64
	}
	return v.Int64()
}

// parquetUnits are the units of Parquet timestamps.
var parquetUnits = []arrow.TimeUnit{arrow.Millisecond, arrow.Microsecond, arrow.Nanosecond}

// TestTicksSaturate: CeilTicks and FloorTicks are the exact tick counts,
// clamped to the int64 range, for instants at the edges of every unit's
// range and far beyond it (a nanosecond count spans only 1677-2262).
// Before, sec*perSec wrapped around: keep: 1000y on a nanosecond column
// gave a cut-off in the future and removed every row.
func TestTicksSaturate(t *testing.T) {
	now := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	var instants []time.Time
	for _, years := range []int{-9999, -1000, -400, -300, 0, 300, 1000, 9999} {
		instants = append(instants, now.AddDate(years, 0, 0), now.AddDate(years, 0, 0).Add(time.Nanosecond))
	}
	for _, u := range parquetUnits {
		for _, edge := range []int64{math.MinInt64, math.MinInt64 + 1, -1, 0, 1, math.MaxInt64 - 1, math.MaxInt64} {
			at := instantOf(edge, u)
			instants = append(instants, at, at.Add(-time.Nanosecond), at.Add(time.Nanosecond), at.Add(-time.Second), at.Add(time.Second))
		}
	}
	for _, u := range parquetUnits {
		for _, at := range instants {
			if got, want := CeilTicks(at, u), clampBig(bigTicks(at, u, true)); got != want {
				t.Errorf("CeilTicks(%s, %s) = %d, want %d", at.Format(time.RFC3339Nano), u, got, want)
			}
			if got, want := FloorTicks(at, u), clampBig(bigTicks(at, u, false)); got != want {
				t.Errorf("FloorTicks(%s, %s) = %d, want %d", at.Format(time.RFC3339Nano), u, got, want)
			}
		}
	}
}

// TestLongPeriodsTicks: retention periods and future skews longer than a
// unit's range (keep 400y, 1000y, 9999y; future_skew 300y) decide every
// row by its instant, through run's Retention and retain's RetainRule, for
// timestamps of s, ms, us and ns; and a row group's statistics are never
// judged expired (or inside) against what its rows are. Before, the
// cut-offs wrapped around: every row was removed as retention or as
// future_time, and retain would have dropped whole row groups undecoded.
func TestLongPeriodsTicks(t *testing.T) {
	now := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	skews := map[string]time.Time{"1d": now.Add(24 * time.Hour), "300y": now.AddDate(300, 0, 0)}
	cases := []struct {
		keep, skew string
		// removed by retention, and future, for the ns column (the rows of
		// nsRows); the other units are checked against the instants
		nsRetention, nsFuture int64
	}{
		{"400y", "1d", 0, 3},
		{"1000y", "1d", 0, 3},
		{"9999y", "1d", 0, 3},
		{"30d", "300y", 2, 0},
		{"1000y", "300y", 0, 0},
	}
	for _, u := range parquetUnits {
		for _, c := range cases {
			t.Run(fmt.Sprintf("%s/keep %s/skew %s", u, c.keep, c.skew), func(t *testing.T) {
				var years int
				var days int
				if _, err := fmt.Sscanf(c.keep, "%dy", &years); err != nil {
					fmt.Sscanf(c.keep, "%dd", &days)
				}
				cutoff := now.AddDate(-years, 0, -days)
				latest := skews[c.skew]
				rows := []int64{math.MinInt64, math.MinInt64 + 1, FloorTicks(now.AddDate(0, 0, -60), u), FloorTicks(now, u),
					FloorTicks(now.AddDate(1, 0, 0), u), math.MaxInt64 - 1, math.MaxInt64}
				checkLongPeriod(t, u, rows, cutoff, latest)
				if u == arrow.Nanosecond {
					sel := applyRetention(t, u, rows, Retention{Cutoff: cutoff, Latest: latest, OnNullRemove: true})
					if sel.Removed(ReasonRetention) != c.nsRetention || sel.Removed(ReasonFutureTime) != c.nsFuture {
						t.Errorf("ns: removed retention %d, future_time %d; want %d, %d", sel.Removed(ReasonRetention),
							sel.Removed(ReasonFutureTime), c.nsRetention, c.nsFuture)
					}
				}
			})
		}
	}
}

// checkLongPeriod checks every decision on rows against their instants.
func checkLongPeriod(t *testing.T, u arrow.TimeUnit, rows []int64, cutoff, latest time.Time) {
	t.Helper()
	var wantRetention, wantFuture int64
	expired, future := make([]bool, len(rows)), make([]bool, len(rows))
	for i, v := range rows {
		at := instantOf(v, u)
		future[i] = at.After(latest)
		expired[i] = !future[i] && at.Before(cutoff)
		switch {
		case future[i]:
			wantFuture++
		case expired[i]:
			wantRetention++
		}
	}
	for _, onNullRemove := range []bool{true, false} {
		sel := applyRetention(t, u, rows, Retention{Cutoff: cutoff, Latest: latest, OnNullRemove: onNullRemove})
		for i := range rows {
			want := !expired[i] && (!future[i] || !onNullRemove)
			if sel.Keeps(i) != want {
				t.Errorf("run (on_null remove %v): row %d (%s) kept %v, want %v", onNullRemove, i, instantOf(rows[i], u), sel.Keeps(i), want)
			}
		}
		if onNullRemove && (sel.Removed(ReasonRetention) != wantRetention || sel.Removed(ReasonFutureTime) != wantFuture) {
			t.Errorf("run: removed retention %d, future_time %d; want %d, %d", sel.Removed(ReasonRetention), sel.Removed(ReasonFutureTime), wantRetention, wantFuture)
		}
		if !onNullRemove {
			rule := Retention{Cutoff: cutoff, Latest: latest}
			if got := rule.FutureKept(tickArray(t, u, rows), sel); got != wantFuture {
				t.Errorf("run: future kept %d, want %d", got, wantFuture)
			}
		}
	}
	// deid retain: fates per row, and the row group's statistics
	col := tickArray(t, u, rows)
	rule := RetainRule{Retention: true, Cutoff: cutoff, Latest: latest, OnNullRemove: true}
	fates := make([]Fate, len(rows))
	var counts RetainCounts
	if err := rule.Decide(col, nil, nil, fates, &counts); err != nil {
		t.Fatal(err)
	}
	if counts.Expired != wantRetention || counts.ExpiredFuture != wantFuture {
		t.Errorf("retain: expired %d, future %d; want %d, %d", counts.Expired, counts.ExpiredFuture, wantRetention, wantFuture)
	}
	for i := range rows {
		if want := expired[i] || future[i]; (fates[i] == FateExpired) != want {
			t.Errorf("retain: row %d (%s) fate %d, want expired %v", i, instantOf(rows[i], u), fates[i], want)
		}
	}
	// every row group of consecutive rows: the span says what the
	// instants say of every row, or is mixed
	for lo := range rows {
		for hi := lo; hi < len(rows); hi++ {
			allGo, allStay := true, true
			for i := lo; i <= hi; i++ {
				allGo = allGo && (expired[i] || future[i])
				allStay = allStay && !expired[i] && !future[i]
			}
			for _, local := range []bool{false, true} {
				span := rule.Classify(TimeStats{HasMinMax: true, Min: rows[lo], Max: rows[hi], Unit: u, Local: local, Rows: int64(hi - lo + 1)})
				if span == SpanExpired && !allGo || span == SpanInside && !allStay {
					t.Errorf("retain: rows %d-%d (local %v) classified %s, but not every row is", lo, hi, local, span)
				}
			}
		}
	}
}

func tickArray(t *testing.T, u arrow.TimeUnit, rows []int64) arrow.Array {
	t.Helper()
	b := array.NewTimestampBuilder(checkedMem(t), &arrow.TimestampType{Unit: u, TimeZone: "UTC"})
	defer b.Release()
	for _, v := range rows {
		b.Append(arrow.Timestamp(v))
	}
	a := b.NewArray()
	t.Cleanup(a.Release)
	return a
}

func applyRetention(t *testing.T, u arrow.TimeUnit, rows []int64, r Retention) *Selection {
	t.Helper()
	sel := &Selection{}
	sel.Reset(len(rows))
	if err := r.Apply(tickArray(t, u, rows), sel); err != nil {
		t.Fatal(err)
	}
	return sel
}
