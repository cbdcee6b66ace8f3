package transforms

import (
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// TestAllocationsDoNotScaleWithValues is an untimed performance guard: the
// hot transforms allocate per batch (buffers, a memo map), never per value.
// Per batch of 16,384 values they may make a few dozen allocations; one per
// value would be thousands and fails the test.
func TestAllocationsDoNotScaleWithValues(t *testing.T) {
	mem := memory.NewGoAllocator()
	const rows = 1 << 14
	type input struct {
		name   string
		params map[string]any
		in     arrow.Array
	}
	strs := func(kind string) []*string { return benchValues(kind)[:rows] }
	ib := array.NewInt64Builder(mem)
	fb := array.NewFloat64Builder(mem)
	tb := array.NewTimestampBuilder(mem, &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"})
	db := array.NewDate32Builder(mem)
	for i := 0; i < rows; i++ {
		ib.Append(int64(1_000_000_000 + i%3000))
		fb.Append(float64(i) / 1000)
		tb.Append(arrow.Timestamp(1_700_000_000_000 + int64(i)*60_000))
		db.Append(arrow.Date32(i))
	}
	subjects := ib.NewArray()
	defer subjects.Release()
	ib.AppendValues(subjects.(*array.Int64).Int64Values(), nil)
	dates := db.NewArray()
	defer dates.Release()
	db.AppendValues(dates.(*array.Date32).Date32Values(), nil)
	floats := fb.NewArray()
	defer floats.Release()
	fb.AppendValues(floats.(*array.Float64).Float64Values(), nil)
	bounds := map[string]any{"bounds": []float64{0, 1, 5, 10}}
	cases := []input{
		{"pseudonymize", nil, stringArray(mem, strs("imei"))},
		{"pseudonymize", nil, dictStringArray(t, mem, strs("imei"))},
		{"pseudonymize", nil, ib.NewArray()},
		{"generalize_ip", map[string]any{"variant": "bench"}, stringArray(mem, strs("ip"))},
		{"url_strip", nil, stringArray(mem, strs("url"))},
		{"scrub", map[string]any{"detectors": []string{"email_bench", "phone_bench"}}, stringArray(mem, strs("query"))},
		{"round", nil, fb.NewArray()},
		{"truncate_time", nil, tb.NewArray()},
		{"redact", nil, stringArray(mem, strs("query"))},
		{"mask", nil, stringArray(mem, strs("phone"))},
		{"generalize_address", nil, stringArray(mem, strs("address"))},
		{"birth_year", nil, stringArray(mem, strs("resident_id"))},
		{"age_band", nil, stringArray(mem, strs("resident_id"))},
		{"age_band", nil, db.NewArray()},
		{"bucket", bounds, floats},
		{"null", nil, floats},
		{"shift_date", nil, dates},
	}
	for _, c := range cases {
		tr := bind(t, c.name, c.params)
		allocs := testing.AllocsPerRun(5, func() {
			out, err := benchApply(tr, mem, c.in, subjects)
			if err != nil {
				t.Fatal(err)
			}
			out.Release()
		})
		if perValue := allocs / rows; perValue > 0.01 {
			t.Errorf("%s on %s: %.0f allocations for %d values (%.3f per value)", c.name, c.in.DataType(), allocs, rows, perValue)
		}
		t.Logf("%s on %s: %.0f allocations per batch of %d", c.name, c.in.DataType(), allocs, rows)
		if c.in != floats && c.in != dates {
			c.in.Release()
		}
	}
	for _, b := range []interface{ Release() }{ib, fb, tb, db} {
		b.Release()
	}
}
