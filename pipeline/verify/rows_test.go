package verify

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/deidproject/deid/pipeline/internal/classes"
	"github.com/deidproject/deid/rules"
	"github.com/deidproject/deid/transforms"
)

// TestVerifyRetentionBoundSaturates: verify's retention bound is the
// oldest kept tick, clamped to the unit's range: a retention reaching
// before a nanosecond column's range (keep 400y, 1000y) keeps every value
// and is no error, and the bound is the run's own cut-off in range.
// Before, the cut-off was out of range for nanoseconds and verify failed.
func TestVerifyRetentionBoundSaturates(t *testing.T) {
	spec, tr := keepTransform(t)
	cases := []struct {
		keep string
		unit arrow.TimeUnit
		want int64
	}{
		{"400y", arrow.Nanosecond, math.MinInt64},
		{"1000y", arrow.Nanosecond, math.MinInt64},
		{"1000y", arrow.Microsecond, retentionNow.AddDate(-1000, 0, 0).UnixMicro()},
		{"30d", arrow.Nanosecond, retentionNow.Add(-30 * 24 * time.Hour).UnixNano()},
		{"30d", arrow.Millisecond, retentionNow.Add(-30 * 24 * time.Hour).UnixMilli()},
	}
	for _, c := range cases {
		t.Run(c.keep+"/"+c.unit.String(), func(t *testing.T) {
			keep, err := rules.ParseDuration(c.keep)
			if err != nil {
				t.Fatal(err)
			}
			ds := &rules.Dataset{DatasetDecl: &rules.DatasetDecl{Retention: &rules.RetentionDecl{TimeColumn: "at", Keep: keep}}}
			b := &rules.Binding{Dataset: ds, Columns: map[string]*rules.BoundColumn{"at": {Name: "at", Spec: spec, Transform: tr}}}
			sch := arrow.NewSchema([]arrow.Field{{Name: "at", Type: &arrow.TimestampType{Unit: c.unit, TimeZone: "UTC"}}}, nil)
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			col, bound, ok, err := retentionBound(mem, b, sch, retentionNow)
			if err != nil || !ok || col != 0 || bound != c.want {
				t.Errorf("bound %d (column %d, %v, %v), want %d", bound, col, ok, err, c.want)
			}
		})
	}
}

// keepTransform returns the keep transform, bound.
func keepTransform(t *testing.T) (*transforms.Spec, transforms.Transform) {
	t.Helper()
	spec, err := transforms.Lookup("keep")
	if err != nil {
		t.Fatal(err)
	}
	tr, _, err := spec.Bind(nil, transforms.Env{Now: retentionNow})
	if err != nil {
		t.Fatal(err)
	}
	return spec, tr
}

// retentionNow is the now retention is measured from in these tests.
var retentionNow = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// TestVerifyRetentionUnreadableTime: a kept time column that an output
// holds as something other than instants (a timestamp without a time zone,
// a dictionary of timestamps, text, integers) is errUnreadableTime, which
// verify reports as a finding: the retention check is never skipped in
// silence.
func TestVerifyRetentionUnreadableTime(t *testing.T) {
	spec, tr := keepTransform(t)
	keep, _ := rules.ParseDuration("30d")
	ds := &rules.Dataset{DatasetDecl: &rules.DatasetDecl{Retention: &rules.RetentionDecl{TimeColumn: "at", Keep: keep}}}
	b := &rules.Binding{Dataset: ds, Columns: map[string]*rules.BoundColumn{"at": {Name: "at", Spec: spec, Transform: tr}}}
	for _, typ := range []arrow.DataType{
		&arrow.TimestampType{Unit: arrow.Millisecond},
		&arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}},
		arrow.BinaryTypes.String,
		arrow.PrimitiveTypes.Int64,
	} {
		sch := arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.BinaryTypes.String}, {Name: "at", Type: typ}}, nil)
		col, _, ok, err := retentionBound(memory.NewGoAllocator(), b, sch, retentionNow)
		if !errors.Is(err, errUnreadableTime) || ok || col != 1 || !strings.Contains(err.Error(), typ.String()) {
			t.Errorf("%s: column %d, %v, %v; want errUnreadableTime naming the type", typ, col, ok, err)
		}
	}
}

// TestFlushClasses: a task's class counts go into the risk check's tally
// once they are more than the limit (all of them with 0), and the task's
// map is then empty, so memory is bounded by the limit per task; counts
// added in pieces sum as if added at once.
func TestFlushClasses(t *testing.T) {
	tally := classes.NewTally(t.TempDir(), 0)
	defer tally.Close()
	fc := &fileCheck{vr: &verifier{}, loc: "f.parquet", rc: &riskClasses{tally: tally}}
	sn := &scanner{fc: fc, sc: &rgScan{classes: map[classes.Key]uint32{}}}
	for i := range 10 {
		sn.sc.classes[classes.Key{Lo: uint64(i % 4)}]++
		if err := sn.flushClasses(3); err != nil {
			t.Fatal(err)
		}
		if n := len(sn.sc.classes); n > 3 {
			t.Fatalf("%d classes held past a limit of 3", n)
		}
	}
	if err := sn.flushClasses(0); err != nil || len(sn.sc.classes) != 0 {
		t.Fatalf("the last flush left %d classes: %v", len(sn.sc.classes), err)
	}
	got := map[uint64]uint32{}
	if err := tally.Each(func(k classes.Key, n uint32) error { got[k.Lo] += n; return nil }); err != nil {
		t.Fatal(err)
	}
	if want := map[uint64]uint32{0: 3, 1: 3, 2: 2, 3: 2}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("counts %v, want %v", got, want)
	}
}
