package transforms

import (
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// ticksPerDay returns the number of ticks of unit in 86,400 seconds.
func ticksPerDay(unit arrow.TimeUnit) int64 {
	return int64(24*time.Hour) / int64(unit.Multiplier())
}

// civilFromDays converts days since 1970-01-01 to a proleptic Gregorian
// date (H. Hinnant's days_from_civil inverse), for any int64 day count that
// does not overflow the arithmetic (|z| < 2^60).
func civilFromDays(z int64) (year int64, month, day int) {
	z += 719468
	era := floorDiv(z, 146097)
	doe := z - era*146097                                  // [0, 146096]
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365 // [0, 399]
	year = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100) // [0, 365]
	mp := (5*doy + 2) / 153                  // [0, 11], March = 0
	day = int(doy - (153*mp+2)/5 + 1)
	if mp < 10 {
		month = int(mp + 3)
	} else {
		month = int(mp - 9)
	}
	if month <= 2 {
		year++
	}
	return year, month, day
}

// fixedOut builds a fixed-width output array whose validity is decided row
// by row (the input's NULLs plus rows the transform turns into NULL).
type fixedOut struct {
	valid, vals *memory.Buffer
	bits        []byte
	n, nulls    int
}

func newFixedOut(mem memory.Allocator, n, width int) *fixedOut {
	o := &fixedOut{n: n}
	o.vals = memory.NewResizableBuffer(mem)
	o.vals.Resize(n * width)
	clear(o.vals.Bytes())
	o.valid = memory.NewResizableBuffer(mem)
	o.valid.Resize(int(bitutil.BytesForBits(int64(n))))
	o.bits = o.valid.Bytes()
	clear(o.bits)
	return o
}

// set marks row i valid; rows not set are NULL.
func (o *fixedOut) set(i int) { bitutil.SetBit(o.bits, i) }

// finish returns the array of type t; the builder must not be used afterwards.
func (o *fixedOut) finish(t arrow.DataType) arrow.Array {
	valid := o.valid
	o.nulls = o.n - bitutil.CountSetBits(o.bits, 0, o.n)
	if o.nulls == 0 {
		valid.Release()
		valid = nil
	}
	d := array.NewData(t, o.n, []*memory.Buffer{valid, o.vals}, nil, o.nulls, 0)
	out := array.MakeFromData(d)
	d.Release()
	o.vals.Release()
	if valid != nil {
		valid.Release()
	}
	return out
}
