package transforms

import (
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// The retention boundary of WORKLOAD.md: now 2026-11-01T00:00:00Z minus 365 × 86,400 s.
var cutoff = time.Date(2025, 11, 1, 0, 0, 0, 0, time.UTC)

func timestamps(t *testing.T, mem memory.Allocator, unit arrow.TimeUnit, times []*time.Time) arrow.Array {
	t.Helper()
	b := array.NewTimestampBuilder(mem, &arrow.TimestampType{Unit: unit, TimeZone: "UTC"})
	defer b.Release()
	for _, tm := range times {
		if tm == nil {
			b.AppendNull()
		} else {
			b.Append(arrow.Timestamp(timeToTicks(*tm, unit)))
		}
	}
	return b.NewArray()
}

func tp(t time.Time) *time.Time { return &t }

func TestRetentionBoundaries(t *testing.T) {
	mem := checkedMem(t)
	times := []*time.Time{
		tp(cutoff),                        // exactly at the cut-off: kept
		tp(cutoff.Add(-time.Millisecond)), // one tick before: removed
		tp(cutoff.Add(time.Millisecond)),  // one tick after: kept
		nil,                               // NULL
		tp(time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)), // negative epoch: removed
		tp(time.Date(2026, 10, 31, 23, 59, 59, 999e6, time.UTC)),
	}
	for _, c := range []struct {
		name         string
		onNullRemove bool
		keep         []bool
		nullTime     int64
	}{
		{"on_null remove", true, []bool{true, false, true, false, false, true}, 1},
		{"on_null keep", false, []bool{true, false, true, true, false, true}, 0},
	} {
		for _, unit := range []arrow.TimeUnit{arrow.Millisecond, arrow.Microsecond, arrow.Nanosecond} {
			col := timestamps(t, mem, unit, times)
			var sel Selection
			sel.Reset(col.Len())
			if err := (Retention{Cutoff: cutoff, OnNullRemove: c.onNullRemove}).Apply(col, &sel); err != nil {
				t.Fatal(err)
			}
			for i, want := range c.keep {
				if sel.Keeps(i) != want {
					t.Errorf("%s %s: row %d kept=%v, want %v", c.name, unit, i, sel.Keeps(i), want)
				}
			}
			if sel.Removed(ReasonNullTime) != c.nullTime || sel.Removed(ReasonRetention) != 2 {
				t.Errorf("%s: counts null=%d retention=%d", c.name, sel.Removed(ReasonNullTime), sel.Removed(ReasonRetention))
			}
			col.Release()
		}
	}
}

// TestRetentionSubUnitCutoff: with a cut-off between two seconds, a
// seconds column keeps the next second and drops the one before.
func TestRetentionSubUnitCutoff(t *testing.T) {
	mem := checkedMem(t)
	cut := cutoff.Add(500 * time.Millisecond)
	col := timestamps(t, mem, arrow.Second, []*time.Time{tp(cutoff), tp(cutoff.Add(time.Second))})
	defer col.Release()
	var sel Selection
	sel.Reset(2)
	if err := (Retention{Cutoff: cut}).Apply(col, &sel); err != nil {
		t.Fatal(err)
	}
	if sel.Keeps(0) || !sel.Keeps(1) {
		t.Errorf("kept %v %v", sel.Keeps(0), sel.Keeps(1))
	}
}

func TestRetentionRejectsNaiveTime(t *testing.T) {
	mem := checkedMem(t)
	b := array.NewTimestampBuilder(mem, &arrow.TimestampType{Unit: arrow.Millisecond})
	b.Append(0)
	col := b.NewArray()
	b.Release()
	defer col.Release()
	var sel Selection
	sel.Reset(1)
	if err := (Retention{Cutoff: cutoff}).Apply(col, &sel); err == nil {
		t.Fatal("naive timestamps accepted")
	}
}

func TestErasure(t *testing.T) {
	mem := checkedMem(t)
	set := NewIntSubjectSet([]int64{1000000007, 42, 42, -1})
	b := array.NewInt64Builder(mem)
	b.AppendValues([]int64{42, 43, 0, -1, 1000000007}, []bool{true, true, false, true, true})
	col := b.NewArray()
	b.Release()
	defer col.Release()
	var sel Selection
	sel.Reset(col.Len())
	if err := (Erasure{Set: set}).Apply(col, &sel); err != nil {
		t.Fatal(err)
	}
	want := []bool{false, true, true, false, false} // NULL subject kept
	for i, w := range want {
		if sel.Keeps(i) != w {
			t.Errorf("row %d kept=%v want %v", i, sel.Keeps(i), w)
		}
	}
	if sel.Removed(ReasonErasure) != 3 || sel.Kept() != 2 {
		t.Errorf("erasure removed %d, kept %d", sel.Removed(ReasonErasure), sel.Kept())
	}
	if set.Len() != 3 {
		t.Errorf("set of %d distinct ids, want 3", set.Len())
	}

	// strings, plain and dictionary-encoded
	sset := NewStringSubjectSet([]string{"867365051234648", ""})
	vals := []*string{sp("867365051234648"), nil, sp(""), sp("x")}
	for _, col := range []arrow.Array{stringArray(mem, vals), dictStringArray(t, mem, vals)} {
		sel.Reset(col.Len())
		if err := (Erasure{Set: sset}).Apply(col, &sel); err != nil {
			t.Fatal(err)
		}
		if sel.Keeps(0) || !sel.Keeps(1) || sel.Keeps(2) || !sel.Keeps(3) {
			t.Errorf("%s: kept %v", col.DataType(), []bool{sel.Keeps(0), sel.Keeps(1), sel.Keeps(2), sel.Keeps(3)})
		}
		col.Release()
	}
}

func TestErasureTypeMismatch(t *testing.T) {
	mem := checkedMem(t)
	col := stringArray(mem, []*string{sp("42")})
	defer col.Release()
	var sel Selection
	sel.Reset(1)
	if err := (Erasure{Set: NewIntSubjectSet([]int64{42})}).Apply(col, &sel); err == nil {
		t.Fatal("an integer erasure list matched a string column")
	}
}

// TestReasonsCountedOnce: a row both expired and erased counts once, under
// the filter that ran first.
func TestReasonsCountedOnce(t *testing.T) {
	mem := checkedMem(t)
	times := timestamps(t, mem, arrow.Millisecond, []*time.Time{tp(cutoff.Add(-time.Hour)), tp(cutoff)})
	defer times.Release()
	b := array.NewInt64Builder(mem)
	b.AppendValues([]int64{7, 7}, nil)
	users := b.NewArray()
	b.Release()
	defer users.Release()
	var sel Selection
	sel.Reset(2)
	_ = Retention{Cutoff: cutoff}.Apply(times, &sel)
	_ = Erasure{Set: NewIntSubjectSet([]int64{7})}.Apply(users, &sel)
	if sel.Removed(ReasonRetention) != 1 || sel.Removed(ReasonErasure) != 1 || sel.Kept() != 0 {
		t.Errorf("retention=%d erasure=%d kept=%d", sel.Removed(ReasonRetention), sel.Removed(ReasonErasure), sel.Kept())
	}
}

func TestSelectionFilter(t *testing.T) {
	mem := checkedMem(t)
	vals := []*string{sp("a"), nil, sp("c"), sp("d")}
	for _, col := range []arrow.Array{stringArray(mem, vals), dictStringArray(t, mem, vals)} {
		var sel Selection
		sel.Reset(4)
		sel.remove(0, ReasonErasure)
		sel.remove(3, ReasonRetention)
		out, err := sel.Filter(mem, col)
		if err != nil {
			t.Fatal(err)
		}
		got := readStrings(t, out)
		if len(got) != 2 || got[0] != nil || deref(got[1]) != "c" {
			t.Errorf("%s: filtered to %v", col.DataType(), got)
		}
		out.Release()
		// none kept
		sel.remove(2, ReasonErasure)
		sel.remove(1, ReasonErasure)
		out, err = sel.Filter(mem, col)
		if err != nil || out.Len() != 0 {
			t.Errorf("empty selection gave %v, %v", out, err)
		}
		out.Release()
		col.Release()
	}
}

func TestCeilTicks(t *testing.T) {
	cases := []struct {
		t    time.Time
		u    arrow.TimeUnit
		want int64
	}{
		{time.Unix(10, 0), arrow.Second, 10},
		{time.Unix(10, 1), arrow.Second, 11},
		{time.Unix(-10, 1), arrow.Second, -9},
		{time.Unix(-10, 0), arrow.Millisecond, -10000},
		{time.Unix(0, 1500), arrow.Microsecond, 2},
		{time.Unix(0, -1500), arrow.Microsecond, -1},
	}
	for _, c := range cases {
		if got := CeilTicks(c.t, c.u); got != c.want {
			t.Errorf("CeilTicks(%v, %s) = %d, want %d", c.t.UTC(), c.u, got, c.want)
		}
	}
}
