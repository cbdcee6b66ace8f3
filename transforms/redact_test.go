package transforms

import (
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
)

func TestRedact(t *testing.T) {
	vals := append(edgeStrings(), sp("１３８００１３８０００"), sp("2408:8207:1851::1"))
	checkAgainst(t, bind(t, "redact", nil), vals, func(string) (string, bool) { return "[REDACTED]", true })
	checkAgainst(t, bind(t, "redact", map[string]any{"with": "已隐藏"}), vals, func(string) (string, bool) { return "已隐藏", true })
	checkAgainst(t, bind(t, "redact", map[string]any{"with": ""}), vals, func(string) (string, bool) { return "", true })
	spec, _ := Lookup("redact")
	if _, _, err := spec.Bind(map[string]any{"with": "\xff"}, Env{}); err == nil || !strings.Contains(err.Error(), "UTF-8") {
		t.Errorf("invalid UTF-8 replacement accepted: %v", err)
	}
	if _, err := bind(t, "redact", nil).OutputType(arrow.PrimitiveTypes.Int64); err == nil {
		t.Error("redact accepted an integer column")
	}
}

// FuzzRedact: whatever the value, the output is the constant (or NULL for NULL).
func FuzzRedact(f *testing.F) {
	for _, s := range []string{"", "13800138000", "\xff\xfe", "[REDACTED]", "张三"} {
		f.Add(s)
	}
	tr := bind(f, "redact", nil)
	f.Fuzz(func(t *testing.T, s string) {
		got := applyStrings(t, checkedMem(t), tr, []*string{&s, nil})
		if deref(got[0]) != "[REDACTED]" || got[1] != nil {
			t.Fatalf("%q: got %q, %q", s, deref(got[0]), deref(got[1]))
		}
	})
}

func TestNull(t *testing.T) {
	mem := checkedMem(t)
	tr := bind(t, "null", nil)
	ib := array.NewInt64Builder(mem)
	ib.AppendValues([]int64{1, 2, 3}, []bool{true, false, true})
	db := array.NewDate32Builder(mem)
	db.AppendValues([]arrow.Date32{1, 2}, nil)
	decType := &arrow.Decimal128Type{Precision: 12, Scale: 2}
	xb := array.NewDecimal128Builder(mem, decType)
	xb.AppendValues([]decimal128.Num{decimal128.FromI64(12850)}, nil)
	tsType := &arrow.TimestampType{Unit: arrow.Nanosecond, TimeZone: "Asia/Shanghai"}
	tb := array.NewTimestampBuilder(mem, tsType)
	tb.AppendValues([]arrow.Timestamp{1, 2, 3, 4}, nil)
	cases := []struct {
		in   arrow.Array
		want arrow.DataType
	}{
		{stringArray(mem, edgeStrings()), arrow.BinaryTypes.String},
		{dictStringArray(t, mem, edgeStrings()), arrow.BinaryTypes.String},
		{stringArray(mem, nil), arrow.BinaryTypes.String},
		{ib.NewArray(), arrow.PrimitiveTypes.Int64},
		{db.NewArray(), arrow.FixedWidthTypes.Date32},
		{xb.NewArray(), decType},
		{tb.NewArray(), tsType},
	}
	for _, b := range []interface{ Release() }{ib, db, xb, tb} {
		b.Release()
	}
	for _, c := range cases {
		out, err := tr.Apply(mem, c.in)
		if err != nil {
			t.Fatal(err)
		}
		if !arrow.TypeEqual(out.DataType(), c.want) || out.Len() != c.in.Len() || out.NullN() != c.in.Len() {
			t.Errorf("%s: got %s of %d values, %d NULL; want %s, all %d NULL", c.in.DataType(), out.DataType(),
				out.Len(), out.NullN(), c.want, c.in.Len())
		}
		for i := 0; i < out.Len(); i++ {
			if out.IsValid(i) {
				t.Errorf("%s: value %d is not NULL", c.in.DataType(), i)
			}
		}
		out.Release()
		c.in.Release()
	}
}
