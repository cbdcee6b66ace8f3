package transforms

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// The inputs birth_year and age_band share: a birth date as a date, a
// timestamp, or the birth date inside an 18-character PRC resident identity
// number (GB 11643-1999).

var birthZoneParam = ParamSpec{Name: "zone", Kind: ParamString, Default: "UTC",
	Doc: "IANA time zone whose calendar gives the date of a timestamp with time zone (a timestamp without one is read as its wall-clock date)"}

var birthYearSpec = &Spec{
	Name: "birth_year",
	Summary: "keep only the year of a birth date, as an int32: from a date, a timestamp, or an 18-character " +
		"resident identity number (digits 7-14 hold the birth date; the number must have a valid ISO 7064 " +
		"MOD 11-2 check character, x or X for 10, a known province code and a real date; otherwise NULL)",
	Inputs:  []Kind{KindDate, KindTimestamp, KindString},
	Params:  []ParamSpec{birthZoneParam},
	Result:  ResultGeneralized,
	Example: "11010519491231002X → 1949; 1990-05-17 → 1990",
	New: func(p Params, _ Env) (Transform, error) {
		loc, err := loadZone(p.String("zone"))
		if err != nil {
			return nil, err
		}
		return &birthYear{loc: loc}, nil
	},
	Describe: func(Params) string {
		return "year of birth (int32); NULL where the source was not a valid birth date or resident identity number"
	},
}

var ageBandSpec = &Spec{
	Name: "age_band",
	Summary: "replace a birth date (date, timestamp or 18-character resident identity number, read as birth_year " +
		"reads them) with the band of the age in full years at the run's reference time (`--now`): bands " +
		"`lo-hi` and the last `lo+`; a birthday on 29 February is reached on 1 March in common years; a birth " +
		"date after now, or an invalid one, gives NULL",
	Inputs: []Kind{KindDate, KindTimestamp, KindString},
	Params: []ParamSpec{
		{Name: "bands", Kind: ParamIntList, Default: []int64{0, 14, 18, 25, 35, 45, 55, 65}, Min: 0, Max: 200,
			Ascending: true, Doc: "lower bounds of the bands in years, strictly ascending, starting at 0"},
		birthZoneParam,
	},
	Result:  ResultGeneralized,
	Example: "1990-05-17 → 35-44 (now 2026-11-01); 2010-01-01 → 14-17",
	New:     newAgeBand,
	Describe: func(p Params) string {
		a, _ := newAgeBandLabels(p.Ints("bands"))
		l := make([]string, len(a))
		for i, b := range a {
			l[i] = string(b)
		}
		return "age band in full years at the run's reference time (" + strings.Join(l, ", ") +
			"); NULL where the birth date was invalid or in the future"
	},
}

func loadZone(name string) (*time.Location, error) {
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("zone %q: %w", name, err)
	}
	return loc, nil
}

// birthDate reads the birth date of row i of a supported input.
type birthDates struct {
	in    arrow.Array
	days  []arrow.Date32    // date32 input
	ts    []arrow.Timestamp // timestamp input
	day   int64             // ticks per day of the timestamps
	loc   *time.Location    // nil: calendar of the ticks (UTC or wall clock)
	strs  byteStrings       // plain string input
	dict  *array.Dictionary // dictionary input
	dates []civilDate       // dict: the date of each dictionary entry
	kind  Kind
}

// civilDate is a proleptic Gregorian date; ok is false for NULL or invalid.
type civilDate struct {
	year       int64
	month, day int
	ok         bool
}

func (a civilDate) before(b civilDate) bool {
	if a.year != b.year {
		return a.year < b.year
	}
	if a.month != b.month {
		return a.month < b.month
	}
	return a.day < b.day
}

func newBirthDates(name string, in arrow.Array, loc *time.Location) (*birthDates, error) {
	r := &birthDates{in: in}
	switch a := in.(type) {
	case *array.Date32:
		r.kind, r.days = KindDate, a.Date32Values()
		return r, nil
	case *array.Timestamp:
		tt := a.DataType().(*arrow.TimestampType)
		r.kind, r.ts, r.day = KindTimestamp, a.TimestampValues(), ticksPerDay(tt.Unit)
		if tt.TimeZone != "" && loc != time.UTC {
			r.loc = loc
		}
		return r, nil
	case *array.Dictionary:
		if k, _ := KindOf(a.DataType()); k != KindString {
			break
		}
		src, ok := newByteStrings(a.Dictionary())
		if !ok {
			break
		}
		r.kind, r.dict = KindString, a
		r.dates = make([]civilDate, a.Dictionary().Len())
		for j := range r.dates {
			if !a.Dictionary().IsNull(j) {
				r.dates[j] = residentIDBirth(src.at(j))
			}
		}
		return r, nil
	}
	if src, ok := newByteStrings(in); ok {
		r.kind, r.strs = KindString, src
		return r, nil
	}
	return nil, fmt.Errorf("%s: %w %s (takes date32, timestamp or string)", name, ErrUnsupportedType, in.DataType())
}

// at returns the birth date of row i; ok is false for NULL or invalid.
func (r *birthDates) at(i int) civilDate {
	if r.in.IsNull(i) {
		return civilDate{}
	}
	switch {
	case r.days != nil:
		y, m, d := civilFromDays(int64(r.days[i]))
		return civilDate{y, m, d, true}
	case r.ts != nil:
		if r.loc != nil {
			y, m, d := ticksToTime(int64(r.ts[i]), r.in.DataType().(*arrow.TimestampType).Unit).In(r.loc).Date()
			return civilDate{int64(y), int(m), d, true}
		}
		y, m, d := civilFromDays(floorDiv(int64(r.ts[i]), r.day))
		return civilDate{y, m, d, true}
	case r.dict != nil:
		j := r.dict.GetValueIndex(i)
		if j < 0 || j >= len(r.dates) {
			return civilDate{}
		}
		return r.dates[j]
	}
	return residentIDBirth(r.strs.at(i))
}

// residentIDWeights are the ISO 7064 MOD 11-2 weights 2^(17-i) mod 11 of
// the first 17 characters of a resident identity number.
var residentIDWeights = [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}

// residentIDCheck maps the weighted sum mod 11 to the check character.
const residentIDCheck = "10X98765432"

// residentIDBirth returns the birth date in an 18-character resident
// identity number (surrounding ASCII spaces ignored): 17 digits and a check
// character that satisfies ISO 7064 MOD 11-2 (X or x for 10), the first two
// digits a province code of GB/T 2260, and digits 7-14 a real date
// YYYYMMDD from the year 1800 on. Anything else is not a birth date.
func residentIDBirth(v []byte) civilDate {
	v = trimASCIISpace(v)
	if len(v) != 18 {
		return civilDate{}
	}
	sum := 0
	for i := 0; i < 17; i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return civilDate{}
		}
		sum += int(c-'0') * residentIDWeights[i]
	}
	check := v[17]
	if check == 'x' {
		check = 'X'
	}
	if residentIDCheck[sum%11] != check {
		return civilDate{}
	}
	if !provinceCodes[int(v[0]-'0')*10+int(v[1]-'0')] {
		return civilDate{}
	}
	num := func(s []byte) int {
		n := 0
		for _, c := range s {
			n = n*10 + int(c-'0')
		}
		return n
	}
	y, m, d := num(v[6:10]), num(v[10:12]), num(v[12:14])
	if y < 1800 || m < 1 || m > 12 || d < 1 || d > daysInMonth(y, m) {
		return civilDate{}
	}
	return civilDate{int64(y), m, d, true}
}

func daysInMonth(y, m int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

func checkBirthInput(name string, in arrow.DataType) error {
	if err := checkKind(name, in, KindDate, KindTimestamp, KindString); err != nil {
		return err
	}
	if d, ok := in.(*arrow.DictionaryType); ok {
		if k, _ := KindOf(d.ValueType); k != KindString {
			return fmt.Errorf("%s: %w %s (takes plain dates and timestamps)", name, ErrUnsupportedType, in)
		}
	}
	return nil
}

type birthYear struct{ loc *time.Location }

func (b *birthYear) OutputType(in arrow.DataType) (arrow.DataType, error) {
	if err := checkBirthInput("birth_year", in); err != nil {
		return nil, err
	}
	return arrow.PrimitiveTypes.Int32, nil
}

func (b *birthYear) Apply(mem memory.Allocator, in arrow.Array) (arrow.Array, error) {
	outType, err := b.OutputType(in.DataType())
	if err != nil {
		return nil, err
	}
	r, err := newBirthDates("birth_year", in, b.loc)
	if err != nil {
		return nil, err
	}
	out := newFixedOut(mem, in.Len(), arrow.Int32SizeBytes)
	dst := arrow.Int32Traits.CastFromBytes(out.vals.Bytes())
	for i := range dst {
		d := r.at(i)
		if !d.ok || d.year < -1<<31 || d.year > 1<<31-1 {
			continue
		}
		dst[i] = int32(d.year)
		out.set(i)
	}
	return out.finish(outType), nil
}

func newAgeBandLabels(bands []int64) ([][]byte, error) {
	if len(bands) == 0 || bands[0] != 0 {
		return nil, fmt.Errorf("parameter %q must start at 0, so that every age has a band", "bands")
	}
	var labels [][]byte
	for i, lo := range bands {
		if i > 0 && lo <= bands[i-1] {
			return nil, fmt.Errorf("parameter %q must be strictly ascending", "bands")
		}
		if i+1 < len(bands) {
			labels = append(labels, []byte(strconv.FormatInt(lo, 10)+"-"+strconv.FormatInt(bands[i+1]-1, 10)))
		} else {
			labels = append(labels, []byte(strconv.FormatInt(lo, 10)+"+"))
		}
	}
	return labels, nil
}

func newAgeBand(p Params, env Env) (Transform, error) {
	if env.Now.IsZero() {
		return nil, fmt.Errorf("needs the run's reference time (Env.Now, the run's --now) to compute ages")
	}
	labels, err := newAgeBandLabels(p.Ints("bands"))
	if err != nil {
		return nil, err
	}
	loc, err := loadZone(p.String("zone"))
	if err != nil {
		return nil, err
	}
	y, m, d := env.Now.In(loc).Date()
	return &ageBand{bands: append([]int64(nil), p.Ints("bands")...), labels: labels, loc: loc,
		now: civilDate{int64(y), int(m), d, true}}, nil
}

type ageBand struct {
	bands  []int64
	labels [][]byte
	loc    *time.Location
	now    civilDate // the reference date in loc
}

func (a *ageBand) OutputType(in arrow.DataType) (arrow.DataType, error) {
	if err := checkBirthInput("age_band", in); err != nil {
		return nil, err
	}
	return arrow.BinaryTypes.String, nil
}

// age returns the age in full years at the reference date, or -1 for a
// birth date after it.
func (a *ageBand) age(b civilDate) int64 {
	if a.now.before(b) {
		return -1
	}
	age := a.now.year - b.year
	if a.now.month < b.month || (a.now.month == b.month && a.now.day < b.day) {
		age--
	}
	return age
}

func (a *ageBand) Apply(mem memory.Allocator, in arrow.Array) (arrow.Array, error) {
	if _, err := a.OutputType(in.DataType()); err != nil {
		return nil, err
	}
	r, err := newBirthDates("age_band", in, a.loc)
	if err != nil {
		return nil, err
	}
	n := in.Len()
	b := newStringBuilder(mem, n, n*6)
	for i := 0; i < n; i++ {
		d := r.at(i)
		if !d.ok {
			b.appendNull()
			continue
		}
		age := a.age(d)
		if age < 0 {
			b.appendNull()
			continue
		}
		k := 0
		for k+1 < len(a.bands) && a.bands[k+1] <= age {
			k++
		}
		b.appendBytes(a.labels[k])
	}
	return b.finish()
}
