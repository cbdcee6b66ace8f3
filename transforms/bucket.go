package transforms

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

var bucketSpec = &Spec{
	Name: "bucket",
	Summary: "replace a number with the label of the range it falls in: with bounds b1 < b2 < … < bn the " +
		"labels are `<b1`, `[b1,b2)`, …, `[bn-1,bn)` and `>=bn` (a range holds its lower bound, not its upper); " +
		"NaN gives NULL; decimals are compared exactly for values and bounds of up to 15 significant digits",
	Inputs: []Kind{KindInteger, KindFloat, KindDecimal},
	Params: []ParamSpec{{Name: "bounds", Kind: ParamFloatList, Ascending: true,
		Doc: "range boundaries, strictly ascending, e.g. [0, 100, 500, 1000]"}},
	Result:  ResultGeneralized,
	Example: "128.50 → [100,500); 99.99 → [0,100); -5 → <0; 1000 → >=1000 (bounds 0, 100, 500, 1000)",
	New: func(p Params, _ Env) (Transform, error) {
		return newBucket(p.Floats("bounds"))
	},
	Describe: func(p Params) string {
		return "range label of the number (bounds " + strings.Join(formatBounds(p.Floats("bounds")), ", ") +
			"; [lo,hi) holds lo), NULL for NaN"
	},
}

func formatBounds(b []float64) []string {
	out := make([]string, len(b))
	for i, x := range b {
		out[i] = strconv.FormatFloat(x, 'f', -1, 64)
	}
	return out
}

// two63 is 2^63 as a float64.
const two63 = float64(1 << 63)

type bucket struct {
	bounds []float64
	labels [][]byte // labels[i] is the label of values with i bounds ≤ them
	// For exact integer comparison: the first intLo bounds are below every
	// int64, bounds [intLo, intHi) are compared through intThr (their
	// ceilings), and bounds from intHi on are above every int64. The same
	// for uint64 with uintLo, uintHi and uintThr.
	intLo, intHi   int
	intThr         []int64
	uintLo, uintHi int
	uintThr        []uint64
}

func newBucket(bounds []float64) (*bucket, error) {
	if len(bounds) == 0 {
		return nil, fmt.Errorf("parameter %q must not be empty", "bounds")
	}
	for i, b := range bounds {
		if math.IsNaN(b) || math.IsInf(b, 0) || (i > 0 && b <= bounds[i-1]) {
			return nil, fmt.Errorf("parameter %q must be finite and strictly ascending", "bounds")
		}
	}
	t := &bucket{bounds: append([]float64(nil), bounds...)}
	txt := formatBounds(bounds)
	t.labels = append(t.labels, []byte("<"+txt[0]))
	for i := 1; i < len(txt); i++ {
		t.labels = append(t.labels, []byte("["+txt[i-1]+","+txt[i]+")"))
	}
	t.labels = append(t.labels, []byte(">="+txt[len(txt)-1]))
	for _, b := range bounds {
		c := math.Ceil(b) // x ≥ b ⇔ x ≥ ceil(b) for an integer x
		switch {
		case c < -two63:
			t.intLo++
		case c < two63:
			t.intThr = append(t.intThr, int64(c))
		}
		switch {
		case c <= 0:
			t.uintLo++
		case c < 2*two63:
			t.uintThr = append(t.uintThr, uint64(c))
		}
	}
	t.intHi = t.intLo + len(t.intThr)
	t.uintHi = t.uintLo + len(t.uintThr)
	return t, nil
}

func (t *bucket) OutputType(in arrow.DataType) (arrow.DataType, error) {
	if err := checkKind("bucket", in, KindInteger, KindFloat, KindDecimal); err != nil {
		return nil, err
	}
	if _, ok := in.(*arrow.DictionaryType); ok {
		return nil, fmt.Errorf("bucket: %w %s (takes plain numbers)", ErrUnsupportedType, in)
	}
	return arrow.BinaryTypes.String, nil
}

// floatIndex returns the number of bounds ≤ x.
func (t *bucket) floatIndex(x float64) int {
	i := 0
	for i < len(t.bounds) && t.bounds[i] <= x {
		i++
	}
	return i
}

func (t *bucket) intIndex(x int64) int {
	i := 0
	for i < len(t.intThr) && t.intThr[i] <= x {
		i++
	}
	return t.intLo + i
}

func (t *bucket) uintIndex(x uint64) int {
	i := 0
	for i < len(t.uintThr) && t.uintThr[i] <= x {
		i++
	}
	return t.uintLo + i
}

func (t *bucket) Apply(mem memory.Allocator, in arrow.Array) (arrow.Array, error) {
	if _, err := t.OutputType(in.DataType()); err != nil {
		return nil, err
	}
	n := in.Len()
	b := newStringBuilder(mem, n, n*len(t.labels[len(t.labels)/2]))
	switch a := in.(type) {
	case *array.Int64:
		bucketSigned(t, b, a, a.Int64Values())
	case *array.Int32:
		bucketSigned(t, b, a, a.Int32Values())
	case *array.Int16:
		bucketSigned(t, b, a, a.Int16Values())
	case *array.Int8:
		bucketSigned(t, b, a, a.Int8Values())
	case *array.Uint64:
		bucketUnsigned(t, b, a, a.Uint64Values())
	case *array.Uint32:
		bucketUnsigned(t, b, a, a.Uint32Values())
	case *array.Uint16:
		bucketUnsigned(t, b, a, a.Uint16Values())
	case *array.Uint8:
		bucketUnsigned(t, b, a, a.Uint8Values())
	case *array.Float64:
		bucketFloats(t, b, a, a.Float64Values())
	case *array.Float32:
		bucketFloats(t, b, a, a.Float32Values())
	case *array.Decimal128:
		scale := a.DataType().(*arrow.Decimal128Type).Scale
		for i, v := range a.Values() {
			if a.IsNull(i) {
				b.appendNull()
				continue
			}
			b.appendBytes(t.labels[t.floatIndex(decimal128ToFloat(v, scale))])
		}
	case *array.Decimal256:
		scale := a.DataType().(*arrow.Decimal256Type).Scale
		for i, v := range a.Values() {
			if a.IsNull(i) {
				b.appendNull()
				continue
			}
			// rare: correctly rounded through the decimal text
			x, err := strconv.ParseFloat(v.ToString(scale), 64)
			if err != nil && !math.IsInf(x, 0) {
				b.release()
				return nil, fmt.Errorf("bucket: decimal %s: %w", v.ToString(scale), err)
			}
			b.appendBytes(t.labels[t.floatIndex(x)])
		}
	default:
		b.release()
		return nil, fmt.Errorf("bucket: %w %s", ErrUnsupportedType, in.DataType())
	}
	return b.finish()
}

func bucketSigned[T ~int8 | ~int16 | ~int32 | ~int64](t *bucket, b *stringBuilder, in arrow.Array, vals []T) {
	for i, v := range vals {
		if in.IsNull(i) {
			b.appendNull()
			continue
		}
		b.appendBytes(t.labels[t.intIndex(int64(v))])
	}
}

func bucketUnsigned[T ~uint8 | ~uint16 | ~uint32 | ~uint64](t *bucket, b *stringBuilder, in arrow.Array, vals []T) {
	for i, v := range vals {
		if in.IsNull(i) {
			b.appendNull()
			continue
		}
		b.appendBytes(t.labels[t.uintIndex(uint64(v))])
	}
}

func bucketFloats[T float32 | float64](t *bucket, b *stringBuilder, in arrow.Array, vals []T) {
	for i, v := range vals {
		x := float64(v)
		if in.IsNull(i) || math.IsNaN(x) {
			b.appendNull()
			continue
		}
		b.appendBytes(t.labels[t.floatIndex(x)])
	}
}

// pow10 holds the powers of ten that float64 represents exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
	1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// decimal128ToFloat returns the float64 nearest to v·10^-scale. For an
// unscaled value of at most 2^53 in magnitude and |scale| ≤ 22 both operands
// are exact and IEEE division (or multiplication) rounds once, correctly;
// other values go through their decimal text.
func decimal128ToFloat(v decimal128.Num, scale int32) float64 {
	hi, lo := v.HighBits(), v.LowBits()
	if (hi == 0 && lo <= 1<<53) || (hi == -1 && lo >= math.MaxUint64-(1<<53)+1) {
		u := float64(int64(lo))
		switch {
		case scale >= 0 && scale <= 22:
			return u / pow10[scale]
		case scale < 0 && scale >= -22:
			return u * pow10[-scale]
		}
	}
	x, _ := strconv.ParseFloat(v.ToString(scale), 64) // out of range: ±Inf, which sorts correctly
	return x
}
