package transforms

import (
	"fmt"
	"math"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

var truncateTimeSpec = &Spec{
	Name: "truncate_time",
	Summary: "floor a timestamp to the start of its second, minute, hour or day; days (and hours in zones " +
		"with a fractional offset) start in the given time zone",
	Inputs: []Kind{KindTimestamp},
	Params: []ParamSpec{
		{Name: "unit", Kind: ParamString, Default: "hour", Enum: []string{"second", "minute", "hour", "day"},
			Doc: "the unit to floor to"},
		{Name: "zone", Kind: ParamString, Default: "UTC",
			Doc: "IANA time zone whose local clock defines the unit boundaries, e.g. Asia/Shanghai"},
	},
	Result:  ResultGeneralized,
	Example: "2026-10-31T14:37:12.345Z → 2026-10-31T14:00:00Z",
	New: func(p Params, _ Env) (Transform, error) {
		loc, err := time.LoadLocation(p.String("zone"))
		if err != nil {
			return nil, fmt.Errorf("zone %q: %w", p.String("zone"), err)
		}
		return &truncateTime{unit: p.String("unit"), loc: loc}, nil
	},
	Describe: func(p Params) string {
		return fmt.Sprintf("event time floored to the start of its %s (%s), as a UTC instant", p.String("unit"), p.String("zone"))
	},
}

type truncateTime struct {
	unit string
	loc  *time.Location
}

func (t *truncateTime) OutputType(in arrow.DataType) (arrow.DataType, error) {
	ts, ok := in.(*arrow.TimestampType)
	if !ok {
		return nil, fmt.Errorf("truncate_time: %w %s (takes timestamp)", ErrUnsupportedType, in)
	}
	if ts.TimeZone == "" {
		return nil, fmt.Errorf("truncate_time: %w: timestamp without time zone (declare the dataset's time_zone)", ErrUnsupportedType)
	}
	return &arrow.TimestampType{Unit: ts.Unit, TimeZone: "UTC"}, nil
}

// unitLength returns the length of the truncation unit in ticks of u.
func (t *truncateTime) unitLength(u arrow.TimeUnit) int64 {
	var d time.Duration
	switch t.unit {
	case "second":
		d = time.Second
	case "minute":
		d = time.Minute
	case "hour":
		d = time.Hour
	default:
		d = 24 * time.Hour
	}
	return int64(d / u.Multiplier())
}

func (t *truncateTime) Apply(mem memory.Allocator, in arrow.Array) (arrow.Array, error) {
	outType, err := t.OutputType(in.DataType())
	if err != nil {
		return nil, err
	}
	unit := outType.(*arrow.TimestampType).Unit
	src := in.(*array.Timestamp).TimestampValues()
	out, vals := newFixedLike(mem, in, arrow.Int64SizeBytes)
	dst := arrow.Int64Traits.CastFromBytes(vals.Bytes())
	// In UTC the boundaries are multiples of the unit since the epoch.
	if t.loc == time.UTC {
		step := t.unitLength(unit)
		for i, v := range src {
			dst[i] = floorDiv(int64(v), step) * step
		}
	} else {
		for i, v := range src {
			if in.IsNull(i) {
				continue
			}
			dst[i] = t.floorInZone(int64(v), unit)
		}
	}
	return finishFixed(out, outType, in, vals), nil
}

// floorInZone floors v (ticks of unit since the epoch) on the local clock.
func (t *truncateTime) floorInZone(v int64, unit arrow.TimeUnit) int64 {
	tm := ticksToTime(v, unit).In(t.loc)
	y, mo, d := tm.Date()
	h, mi, s := tm.Clock()
	switch t.unit {
	case "second":
		tm = time.Date(y, mo, d, h, mi, s, 0, t.loc)
	case "minute":
		tm = time.Date(y, mo, d, h, mi, 0, 0, t.loc)
	case "hour":
		tm = time.Date(y, mo, d, h, 0, 0, 0, t.loc)
	default:
		tm = time.Date(y, mo, d, 0, 0, 0, 0, t.loc)
	}
	return timeToTicks(tm, unit)
}

// ticksToTime converts ticks of unit since the Unix epoch to a time.
func ticksToTime(v int64, unit arrow.TimeUnit) time.Time {
	switch unit {
	case arrow.Second:
		return time.Unix(v, 0)
	case arrow.Millisecond:
		return time.UnixMilli(v)
	case arrow.Microsecond:
		return time.UnixMicro(v)
	}
	return time.Unix(0, v)
}

// timeToTicks converts a time to ticks of unit since the Unix epoch.
func timeToTicks(t time.Time, unit arrow.TimeUnit) int64 {
	switch unit {
	case arrow.Second:
		return t.Unix()
	case arrow.Millisecond:
		return t.UnixMilli()
	case arrow.Microsecond:
		return t.UnixMicro()
	}
	return t.UnixNano()
}

// floorDiv is floor(a / b) for b > 0, also for negative a.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

var roundSpec = &Spec{
	Name: "round",
	Summary: "round a number to `digits` decimal places, half away from zero, computed in binary64 as " +
		"round(x·10^digits)/10^digits (DuckDB's round(DOUBLE, n)); ±Inf and NaN results keep the input",
	Inputs: []Kind{KindFloat},
	Params: []ParamSpec{{Name: "digits", Kind: ParamInt, Default: int64(2), Min: 0, Max: 15,
		Doc: "decimal places kept (2 ≈ 1.1 km for coordinates)"}},
	Result:  ResultGeneralized,
	Example: "116.405285 → 116.41; 1.005 → 1 (binary64: 1.005·100 = 100.49999999999999)",
	New: func(p Params, _ Env) (Transform, error) {
		return &round{scale: math.Pow(10, float64(p.Int("digits")))}, nil
	},
	Describe: func(p Params) string {
		return fmt.Sprintf("number rounded to %d decimal places (half away from zero, binary64)", p.Int("digits"))
	},
}

type round struct{ scale float64 }

func (r *round) OutputType(in arrow.DataType) (arrow.DataType, error) {
	if err := checkKind("round", in, KindFloat); err != nil {
		return nil, err
	}
	if _, ok := in.(*arrow.DictionaryType); ok {
		return nil, fmt.Errorf("round: %w %s (takes plain float)", ErrUnsupportedType, in)
	}
	return in, nil
}

func (r *round) Apply(mem memory.Allocator, in arrow.Array) (arrow.Array, error) {
	outType, err := r.OutputType(in.DataType())
	if err != nil {
		return nil, err
	}
	switch a := in.(type) {
	case *array.Float64:
		out, vals := newFixedLike(mem, in, arrow.Float64SizeBytes)
		dst := arrow.Float64Traits.CastFromBytes(vals.Bytes())
		for i, x := range a.Float64Values() {
			dst[i] = r.round(x)
		}
		return finishFixed(out, outType, in, vals), nil
	case *array.Float32:
		out, vals := newFixedLike(mem, in, arrow.Float32SizeBytes)
		dst := arrow.Float32Traits.CastFromBytes(vals.Bytes())
		for i, x := range a.Float32Values() {
			dst[i] = float32(r.round(float64(x)))
		}
		return finishFixed(out, outType, in, vals), nil
	}
	return nil, fmt.Errorf("round: %w %s", ErrUnsupportedType, in.DataType())
}

func (r *round) round(x float64) float64 {
	y := math.Round(x*r.scale) / r.scale
	if math.IsInf(y, 0) || math.IsNaN(y) {
		return x
	}
	return y
}

// newFixedLike allocates the validity (a copy of in's) and a value buffer of
// width bytes per element for a fixed-width output of in's length.
func newFixedLike(mem memory.Allocator, in arrow.Array, width int) (valid, vals *memory.Buffer) {
	n := in.Len()
	vals = memory.NewResizableBuffer(mem)
	vals.Resize(n * width)
	clear(vals.Bytes())
	if in.NullN() > 0 {
		valid = memory.NewResizableBuffer(mem)
		valid.Resize(int(bitutil.BytesForBits(int64(n))))
		bitutil.CopyBitmap(in.NullBitmapBytes(), in.Data().Offset(), n, valid.Bytes(), 0)
	}
	return valid, vals
}

// finishFixed assembles the output array and releases the builder's references.
func finishFixed(valid *memory.Buffer, t arrow.DataType, in arrow.Array, vals *memory.Buffer) arrow.Array {
	d := array.NewData(t, in.Len(), []*memory.Buffer{valid, vals}, nil, in.NullN(), 0)
	out := array.MakeFromData(d)
	d.Release()
	vals.Release()
	if valid != nil {
		valid.Release()
	}
	return out
}
