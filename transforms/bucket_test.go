package transforms

import (
	"math"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/decimal256"
)

// checkLabels applies tr to in and compares with want (nil: NULL).
func checkLabels(t *testing.T, tr Transform, in arrow.Array, want []*string) {
	t.Helper()
	mem := checkedMem(t)
	out := mustApply(t, tr, mem, in)
	defer out.Release()
	got := readStrings(t, out)
	for i := range want {
		if deref(got[i]) != deref(want[i]) || (got[i] == nil) != (want[i] == nil) {
			t.Errorf("%s value %s: got %s, want %s", in.DataType(), in.ValueStr(i), deref(got[i]), deref(want[i]))
		}
	}
}

func TestBucket(t *testing.T) {
	mem := checkedMem(t)
	tr := bind(t, "bucket", map[string]any{"bounds": []float64{0, 100, 500, 1000}})
	lt0, a, b, c, ge := sp("<0"), sp("[0,100)"), sp("[100,500)"), sp("[500,1000)"), sp(">=1000")

	ints := int64Array(mem, []int64{-1, 0, 99, 100, 499, 500, 999, 1000, math.MaxInt64, math.MinInt64, 5},
		[]bool{true, true, true, true, true, true, true, true, true, true, false})
	checkLabels(t, tr, ints, []*string{lt0, a, a, b, b, c, c, ge, ge, lt0, nil})
	ints.Release()

	fb := array.NewFloat64Builder(mem)
	fb.AppendValues([]float64{-0.0, -1e-300, 99.99999999, 100, math.NaN(), math.Inf(1), math.Inf(-1), 999.9999999999999, 1e308, 3},
		[]bool{true, true, true, true, true, true, true, true, true, false})
	floats := fb.NewArray()
	fb.Release()
	checkLabels(t, tr, floats, []*string{a, lt0, a, b, nil, ge, lt0, c, ge, nil})
	floats.Release()

	f32 := array.NewFloat32Builder(mem)
	f32.AppendValues([]float32{float32(math.NaN()), 100, 99.9}, nil)
	f32a := f32.NewArray()
	f32.Release()
	checkLabels(t, tr, f32a, []*string{nil, b, a})
	f32a.Release()

	// DECIMAL(12,2) amounts as the bench's orders table stores them (cents)
	db := array.NewDecimal128Builder(mem, &arrow.Decimal128Type{Precision: 12, Scale: 2})
	for _, cents := range []int64{12850, 9999, 10000, -1, 0, 99999999999, 100000} {
		db.Append(decimal128.FromI64(cents))
	}
	db.AppendNull()
	decs := db.NewArray()
	db.Release()
	checkLabels(t, tr, decs, []*string{b, a, b, lt0, a, ge, ge, nil})
	decs.Release()

	u8 := array.NewUint8Builder(mem)
	u8.AppendValues([]uint8{0, 99, 100, 255}, nil)
	u8a := u8.NewArray()
	u8.Release()
	checkLabels(t, tr, u8a, []*string{a, a, b, b})
	u8a.Release()

	// a negative scale multiplies: 1 at scale -3 is 1000
	dn := array.NewDecimal128Builder(mem, &arrow.Decimal128Type{Precision: 10, Scale: -3})
	dn.AppendValues([]decimal128.Num{decimal128.FromI64(1), decimal128.FromI64(0)}, nil)
	dna := dn.NewArray()
	dn.Release()
	checkLabels(t, tr, dna, []*string{ge, a})
	dna.Release()

	i32 := array.NewInt32Builder(mem)
	i32.AppendValues([]int32{math.MinInt32, 1000}, nil)
	i32a := i32.NewArray()
	i32.Release()
	checkLabels(t, tr, i32a, []*string{lt0, ge})
	i32a.Release()
}

func TestBucketFractionalAndHugeBounds(t *testing.T) {
	mem := checkedMem(t)
	// 0.1 and 0.2 are not binary fractions: decimals on the bound belong to
	// the range the bound opens
	tr := bind(t, "bucket", map[string]any{"bounds": []float64{0.1, 0.2}})
	db := array.NewDecimal128Builder(mem, &arrow.Decimal128Type{Precision: 12, Scale: 2})
	for _, cents := range []int64{10, 9, 20, 19} {
		db.Append(decimal128.FromI64(cents))
	}
	decs := db.NewArray()
	db.Release()
	checkLabels(t, tr, decs, []*string{sp("[0.1,0.2)"), sp("<0.1"), sp(">=0.2"), sp("[0.1,0.2)")})
	decs.Release()

	// scale 0, and a value wider than 2^53
	d0 := array.NewDecimal128Builder(mem, &arrow.Decimal128Type{Precision: 38, Scale: 0})
	d0.Append(decimal128.FromI64(1))
	d0.Append(decimal128.New(1, 0)) // 2^64
	d0a := d0.NewArray()
	d0.Release()
	checkLabels(t, tr, d0a, []*string{sp(">=0.2"), sp(">=0.2")})
	d0a.Release()

	d256 := array.NewDecimal256Builder(mem, &arrow.Decimal256Type{Precision: 40, Scale: 2})
	d256.Append(decimal256.FromI64(15))
	d256.Append(decimal256.FromI64(-15))
	d256a := d256.NewArray()
	d256.Release()
	checkLabels(t, tr, d256a, []*string{sp("[0.1,0.2)"), sp("<0.1")})
	d256a.Release()

	// bounds beyond the int64 range: integers compare exactly
	huge := bind(t, "bucket", map[string]any{"bounds": []float64{-1e19, 1e19}})
	ints := int64Array(mem, []int64{math.MinInt64, math.MaxInt64}, nil)
	checkLabels(t, huge, ints, []*string{sp("[-10000000000000000000,10000000000000000000)"), sp("[-10000000000000000000,10000000000000000000)")})
	ints.Release()
	ub := array.NewUint64Builder(mem)
	ub.AppendValues([]uint64{math.MaxUint64, 1e19 - 1, 1e19}, nil)
	uints := ub.NewArray()
	ub.Release()
	checkLabels(t, huge, uints, []*string{sp(">=10000000000000000000"), sp("[-10000000000000000000,10000000000000000000)"), sp(">=10000000000000000000")})
	uints.Release()
	// 2^53+1 is the first integer a float64 cannot hold: a bound of 2^53
	// must still put it above
	p53 := bind(t, "bucket", map[string]any{"bounds": []float64{1 << 53}})
	ints = int64Array(mem, []int64{1<<53 - 1, 1 << 53, 1<<53 + 1}, nil)
	checkLabels(t, p53, ints, []*string{sp("<9007199254740992"), sp(">=9007199254740992"), sp(">=9007199254740992")})
	ints.Release()
}

func TestBucketParams(t *testing.T) {
	spec, _ := Lookup("bucket")
	for _, c := range []struct {
		params map[string]any
		want   string
	}{
		{nil, `"bounds" is required`},
		{map[string]any{"bounds": []float64{}}, "must not be empty"},
		{map[string]any{"bounds": []float64{1, 1}}, "strictly ascending"},
		{map[string]any{"bounds": []float64{2, 1}}, "strictly ascending"},
		{map[string]any{"bounds": []float64{math.NaN()}}, "not a finite number"},
		{map[string]any{"bounds": []float64{math.Inf(1)}}, "not a finite number"},
		{map[string]any{"bounds": []string{"1"}}, "must be a list of numbers"},
	} {
		if _, _, err := spec.Bind(c.params, Env{}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want %q", c.params, err, c.want)
		}
	}
	tr := bind(t, "bucket", map[string]any{"bounds": []float64{1}})
	for _, typ := range []arrow.DataType{arrow.BinaryTypes.String, arrow.FixedWidthTypes.Date32,
		&arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.PrimitiveTypes.Int64}} {
		if _, err := tr.OutputType(typ); err == nil {
			t.Errorf("bucket accepted %s", typ)
		}
	}
	// a single bound gives two labels
	mem := checkedMem(t)
	in := int64Array(mem, []int64{0, 1}, nil)
	checkLabels(t, tr, in, []*string{sp("<1"), sp(">=1")})
	in.Release()
}
