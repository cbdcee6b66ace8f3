package transforms

import (
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// TestRetainDecide: retention, NULL times with and without a fallback clock,
// erasure, the legal minimum and legal holds, row by row, at the boundaries.
func TestRetainDecide(t *testing.T) {
	mem := checkedMem(t)
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	cut := now.AddDate(-3, 0, 0) // retention and legal minimum: 3 years
	fbCut := now.AddDate(-1, 0, 0)
	old := cut.Add(-time.Hour)
	recent := now.AddDate(0, -1, 0)
	//                   0           1                             2       3     4                         5     6       7       8
	times := []*time.Time{tp(cut), tp(cut.Add(-time.Microsecond)), tp(old), nil, nil, tp(recent), tp(recent), tp(old), nil}
	fallback := []*time.Time{nil, nil, nil, tp(fbCut.Add(-time.Microsecond)), tp(fbCut), nil, nil, nil, nil}
	subjects := array.NewInt64Builder(mem)
	defer subjects.Release()
	subjects.AppendValues([]int64{1, 1, 2, 1, 1, 3, 4, 4, 3}, nil)
	subj := subjects.NewArray()
	defer subj.Release()
	tcol := timestamps(t, mem, arrow.Microsecond, times)
	defer tcol.Release()
	fcol := timestamps(t, mem, arrow.Microsecond, fallback)
	defer fcol.Release()

	K, X, E, R := FateKeep, FateExpired, FateErased, FateRestricted
	cases := []struct {
		name   string
		rule   RetainRule
		fates  []Fate
		counts RetainCounts
	}{
		{"retention, NULL kept", RetainRule{Retention: true, Cutoff: cut},
			[]Fate{K, X, X, K, K, K, K, X, K}, RetainCounts{Expired: 3, NullKept: 3}},
		{"retention, NULL removed", RetainRule{Retention: true, Cutoff: cut, OnNullRemove: true},
			[]Fate{K, X, X, X, X, K, K, X, X}, RetainCounts{Expired: 3, ExpiredNull: 3}},
		{"fallback clock: one tick before its cut-off goes, at it stays, NULL fallback stays", RetainRule{Retention: true, Cutoff: cut, Fallback: true, FallbackCutoff: fbCut},
			[]Fate{K, X, X, X, K, K, K, X, K}, RetainCounts{Expired: 3, ExpiredNull: 1, NullKept: 2}},
		{"erasure without legal minimum", RetainRule{Retention: true, Cutoff: cut, Erasure: NewIntSubjectSet([]int64{3})},
			[]Fate{K, X, X, K, K, E, K, X, E}, RetainCounts{Expired: 3, Erased: 2, NullKept: 2}},
		{"legal minimum restricts erasure inside it and of NULL times", RetainRule{Retention: true, Cutoff: cut, LegalMinimum: true, LegalCutoff: cut, Erasure: NewIntSubjectSet([]int64{1, 3})},
			[]Fate{R, X, X, R, R, R, K, X, R}, RetainCounts{Expired: 3, Restricted: 5}},
		{"legal minimum beats a hold: restricted rows are isolated, not held", RetainRule{Retention: true, Cutoff: cut, LegalMinimum: true, LegalCutoff: cut, Erasure: NewIntSubjectSet([]int64{1, 3}), Hold: NewIntSubjectSet([]int64{3})},
			[]Fate{R, X, X, R, R, R, K, X, R}, RetainCounts{Expired: 3, Restricted: 5}},
		// the isolated part: every row is of an erased subject, lists or not
		{"isolated rows inside the legal minimum stay, the others go", RetainRule{Retention: true, Cutoff: cut, LegalMinimum: true, LegalCutoff: recent.Add(time.Second), Isolated: true},
			[]Fate{E, X, X, K, K, E, E, X, K}, RetainCounts{Expired: 3, Erased: 3, Restricted: 3}},
		{"isolated rows of held subjects stay held once the minimum ends", RetainRule{Retention: true, Cutoff: cut, LegalMinimum: true, LegalCutoff: recent.Add(time.Second), Isolated: true, Hold: NewIntSubjectSet([]int64{1, 4})},
			[]Fate{K, K, X, K, K, E, K, K, K}, RetainCounts{Expired: 1, Erased: 1, Held: 4, Restricted: 3}},
		{"isolated rows without a legal minimum go", RetainRule{Retention: true, Cutoff: cut, Isolated: true},
			[]Fate{E, X, X, E, E, E, E, X, E}, RetainCounts{Expired: 3, Erased: 6}},
		{"legal hold beats retention and erasure", RetainRule{Retention: true, Cutoff: cut, OnNullRemove: true, Erasure: NewIntSubjectSet([]int64{3}), Hold: NewIntSubjectSet([]int64{1, 3})},
			[]Fate{K, K, X, K, K, K, K, X, K}, RetainCounts{Expired: 2, Held: 5}},
		{"erasure only (no retention rule)", RetainRule{Erasure: NewIntSubjectSet([]int64{4})},
			[]Fate{K, K, K, K, K, K, E, E, K}, RetainCounts{Erased: 2}},
		// a dataset whose service ended: every row goes, as erased rows would
		{"ended: every row inside retention goes too", RetainRule{Retention: true, Cutoff: cut, Ended: true},
			[]Fate{E, X, X, E, E, E, E, X, E}, RetainCounts{Expired: 3, Ended: 6}},
		{"ended with an erasure list: listed subjects count as erased", RetainRule{Retention: true, Cutoff: cut, Ended: true, Erasure: NewIntSubjectSet([]int64{3})},
			[]Fate{E, X, X, E, E, E, E, X, E}, RetainCounts{Expired: 3, Erased: 2, Ended: 4}},
		{"ended: the legal minimum isolates, a hold keeps", RetainRule{Retention: true, Cutoff: cut, Ended: true, LegalMinimum: true, LegalCutoff: recent.Add(time.Second), Hold: NewIntSubjectSet([]int64{4})},
			[]Fate{E, X, X, R, R, E, K, K, R}, RetainCounts{Expired: 2, Ended: 2, Held: 2, Restricted: 3}},
		{"ended without a retention rule", RetainRule{Ended: true},
			[]Fate{E, E, E, E, E, E, E, E, E}, RetainCounts{Ended: 9}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fates := make([]Fate, len(times))
			var counts RetainCounts
			tc, fc, sc := arrow.Array(tcol), arrow.Array(fcol), arrow.Array(subj)
			if !c.rule.Retention {
				tc, fc = nil, nil
			}
			if !c.rule.Fallback {
				fc = nil
			}
			if !c.rule.NeedsSubjects() {
				sc = nil
			}
			if err := c.rule.Decide(tc, fc, sc, fates, &counts); err != nil {
				t.Fatal(err)
			}
			for i := range fates {
				if fates[i] != c.fates[i] {
					t.Errorf("row %d: fate %d, want %d", i, fates[i], c.fates[i])
				}
			}
			if counts != c.counts {
				t.Errorf("counts %+v, want %+v", counts, c.counts)
			}
		})
	}
}

// TestRetainDecideZones: a time column labelled with another zone holds
// instants; the cut-off compares instants.
func TestRetainDecideZones(t *testing.T) {
	mem := checkedMem(t)
	cut := time.Date(2025, 11, 1, 0, 0, 0, 0, time.UTC)
	b := array.NewTimestampBuilder(mem, &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "Asia/Shanghai"})
	defer b.Release()
	sh, _ := time.LoadLocation("Asia/Shanghai")
	// 08:00 in Shanghai on 1 November is the cut-off instant; 07:59:59.999 is before it
	b.Append(arrow.Timestamp(time.Date(2025, 11, 1, 8, 0, 0, 0, sh).UnixMilli()))
	b.Append(arrow.Timestamp(time.Date(2025, 11, 1, 7, 59, 59, 999e6, sh).UnixMilli()))
	col := b.NewArray()
	defer col.Release()
	fates := make([]Fate, 2)
	var c RetainCounts
	if err := (RetainRule{Retention: true, Cutoff: cut}).Decide(col, nil, nil, fates, &c); err != nil {
		t.Fatal(err)
	}
	if fates[0] != FateKeep || fates[1] != FateExpired {
		t.Errorf("fates %v", fates)
	}
	// wall-clock times must be converted first
	lb := array.NewTimestampBuilder(mem, &arrow.TimestampType{Unit: arrow.Millisecond})
	defer lb.Release()
	lb.Append(0)
	local := lb.NewArray()
	defer local.Release()
	if err := (RetainRule{Retention: true, Cutoff: cut}).Decide(local, nil, nil, fates[:1], &c); err == nil {
		t.Error("wall-clock times accepted")
	}
}

func TestRetainClassify(t *testing.T) {
	cut := time.Date(2025, 11, 1, 0, 0, 0, 0, time.UTC)
	c := CeilTicks(cut, arrow.Microsecond)
	day := int64(24 * time.Hour / time.Microsecond)
	keep := RetainRule{Retention: true, Cutoff: cut}
	remove := RetainRule{Retention: true, Cutoff: cut, OnNullRemove: true}
	fallback := RetainRule{Retention: true, Cutoff: cut, Fallback: true}
	st := func(min, max, nulls int64) TimeStats {
		return TimeStats{HasMinMax: true, Min: min, Max: max, Unit: arrow.Microsecond, Nulls: nulls, Rows: 10}
	}
	cases := []struct {
		name string
		rule RetainRule
		s    TimeStats
		want Span
	}{
		{"min exactly at the cut-off", keep, st(c, c+day, 0), SpanInside},
		{"min one tick before", keep, st(c-1, c+day, 0), SpanMixed},
		{"max one tick before", keep, st(c-day, c-1, 0), SpanExpired},
		{"max exactly at the cut-off", keep, st(c-day, c, 0), SpanMixed},
		{"NULLs kept inside", keep, st(c, c+day, 3), SpanInside},
		{"NULLs kept, rest expired", keep, st(c-day, c-1, 3), SpanMixed},
		{"NULLs removed, rest expired", remove, st(c-day, c-1, 3), SpanExpired},
		{"NULLs removed, rest inside", remove, st(c, c+day, 3), SpanMixed},
		{"NULLs with a fallback clock", fallback, st(c, c+day, 3), SpanMixed},
		{"all NULL, kept", keep, TimeStats{Nulls: 10, Rows: 10}, SpanInside},
		{"all NULL, removed", remove, TimeStats{Nulls: 10, Rows: 10}, SpanExpired},
		{"all NULL, fallback", fallback, TimeStats{Nulls: 10, Rows: 10}, SpanMixed},
		{"no statistics", keep, TimeStats{Nulls: 0, Rows: 10}, SpanMixed},
		{"unknown NULL count", keep, TimeStats{HasMinMax: true, Min: c, Max: c, Unit: arrow.Microsecond, Nulls: -1, Rows: 10}, SpanMixed},
		{"no retention", RetainRule{}, TimeStats{}, SpanInside},
		{"wall clock within a day of the cut-off", keep, TimeStats{HasMinMax: true, Min: c + day/2, Max: c + 2*day, Unit: arrow.Microsecond, Local: true, Rows: 10}, SpanMixed},
		{"wall clock two days after", keep, TimeStats{HasMinMax: true, Min: c + 2*day, Max: c + 3*day, Unit: arrow.Microsecond, Local: true, Rows: 10}, SpanInside},
		{"wall clock two days before", keep, TimeStats{HasMinMax: true, Min: c - 3*day, Max: c - 2*day, Unit: arrow.Microsecond, Local: true, Rows: 10}, SpanExpired},
	}
	for _, tc := range cases {
		if got := tc.rule.Classify(tc.s); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestAnyIntBetween(t *testing.T) {
	s := NewIntSubjectSet([]int64{5, 10, 20})
	for _, c := range []struct {
		lo, hi int64
		want   bool
	}{{0, 4, false}, {0, 5, true}, {6, 9, false}, {10, 10, true}, {11, 19, false}, {21, 100, false}, {-5, 100, true}} {
		if got := s.AnyIntBetween(c.lo, c.hi); got != c.want {
			t.Errorf("[%d,%d]: %v", c.lo, c.hi, got)
		}
	}
	if !NewStringSubjectSet([]string{"a"}).AnyIntBetween(0, 0) {
		t.Error("a string set settles nothing")
	}
}

// TestRetentionFallback: deid run's retention with a fallback clock for
// NULL times agrees with retain's decisions at the boundaries.
func TestRetentionFallback(t *testing.T) {
	mem := checkedMem(t)
	fbCut := time.Date(2025, 11, 1, 0, 0, 0, 0, time.UTC)
	times := timestamps(t, mem, arrow.Microsecond, []*time.Time{nil, nil, nil, tp(cutoff), tp(cutoff.Add(-time.Microsecond))})
	defer times.Release()
	fb := timestamps(t, mem, arrow.Microsecond, []*time.Time{tp(fbCut), tp(fbCut.Add(-time.Microsecond)), nil, tp(time.Time{}), tp(fbCut)})
	defer fb.Release()
	var sel Selection
	sel.Reset(5)
	if err := (Retention{Cutoff: cutoff, FallbackCutoff: fbCut}).ApplyFallback(times, fb, &sel); err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, false, true, true, false} {
		if sel.Keeps(i) != want {
			t.Errorf("row %d kept=%v, want %v", i, sel.Keeps(i), want)
		}
	}
	if sel.Removed(ReasonNullTime) != 1 || sel.Removed(ReasonRetention) != 1 {
		t.Errorf("removed null_time %d retention %d", sel.Removed(ReasonNullTime), sel.Removed(ReasonRetention))
	}
}
