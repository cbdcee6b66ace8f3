package verify

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/deidproject/deid/rules"
	"github.com/deidproject/deid/transforms"
)

// TestVerifyRetentionBoundSaturates: verify's retention bound is the
// oldest kept tick, clamped to the unit's range: a retention reaching
// before a nanosecond column's range (keep 400y, 1000y) keeps every value
// and is no error, and the bound is the run's own cut-off in range.
// Before, the cut-off was out of range for nanoseconds and verify failed.
func TestVerifyRetentionBoundSaturates(t *testing.T) {
	spec, err := transforms.Lookup("keep")
	if err != nil {
		t.Fatal(err)
	}
	tr, _, err := spec.Bind(nil, transforms.Env{Now: retentionNow})
	if err != nil {
		t.Fatal(err)
	}
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

// retentionNow is the now retention is measured from in these tests.
var retentionNow = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// TestVerifyRetentionUnreadableTime: a kept time column that an output
// holds as something other than instants (a timestamp without a time zone,
// a dictionary of timestamps, text, integers) is errUnreadableTime, which
// verify reports as a finding: the retention check is never skipped in
// silence.
func TestVerifyRetentionUnreadableTime(t *testing.T) {
	spec, err := transforms.Lookup("keep")
	if err != nil {
		t.Fatal(err)
	}
	tr, _, err := spec.Bind(nil, transforms.Env{Now: retentionNow})
	if err != nil {
		t.Fatal(err)
	}
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
