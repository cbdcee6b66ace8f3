package transforms

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// residentIDCases: resident identity numbers and the birth year each gives
// (0: NULL). Check characters computed with an independent implementation
// of ISO 7064 MOD 11-2 (weights 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2).
var residentIDCases = []struct {
	id   string
	year int32
}{
	{"11010519491231002X", 1949}, // GB 11643-1999's own example
	{"11010519491231002x", 1949}, // lowercase x accepted
	{" 11010519491231002X\t", 1949},
	{"440305200811021232", 2008},
	{"33040219900517001X", 1990},
	{"440305200002290010", 2000}, // 29 February of a leap year
	{"110105194912310021", 0},    // wrong check character
	{"11010519491231002Y", 0},
	{"110105194902300020", 0}, // 30 February, valid check character
	{"990105199005170015", 0}, // no province 99, valid check character
	{"440305179912310013", 0}, // before 1800, valid check character
	{"11010519491231002", 0},  // 17 characters
	{"11010519491231002X1", 0},
	{"110105491231002", 0}, // the old 15-digit form is not read
	{"１１０１０５１９４９１２３１００２Ｘ", 0},
	{"1101051949123100\xff2X", 0},
	{"", 0},
	{megabyte, 0},
}

func int32Values(t *testing.T, a arrow.Array) []*int32 {
	t.Helper()
	out := make([]*int32, a.Len())
	ia := a.(*array.Int32)
	for i := range out {
		if ia.IsValid(i) {
			out[i] = ptr(ia.Value(i))
		}
	}
	return out
}

func TestBirthYearResidentID(t *testing.T) {
	mem := checkedMem(t)
	tr := bind(t, "birth_year", nil)
	var vals []*string
	for _, c := range residentIDCases {
		vals = append(vals, sp(c.id))
	}
	vals = append(vals, nil)
	for _, in := range []arrow.Array{stringArray(mem, vals), dictStringArray(t, mem, vals)} {
		out := mustApply(t, tr, mem, in)
		got := int32Values(t, out)
		for i, c := range residentIDCases {
			switch {
			case c.year == 0 && got[i] != nil:
				t.Errorf("%s %.30q: got %d, want NULL", in.DataType(), c.id, *got[i])
			case c.year != 0 && (got[i] == nil || *got[i] != c.year):
				t.Errorf("%s %.30q: got %v, want %d", in.DataType(), c.id, got[i], c.year)
			}
		}
		if got[len(got)-1] != nil {
			t.Error("NULL gave a year")
		}
		out.Release()
		in.Release()
	}
}

func TestBirthYearDates(t *testing.T) {
	mem := checkedMem(t)
	days := []arrow.Date32{day(1990, 5, 17), 0, -1, day(2000, 2, 29), day(2000, 12, 31), day(2001, 1, 1),
		day(9999, 12, 31), day(1, 1, 1), day(1600, 3, 1), -2147483648, 2147483647}
	in := date32Array(mem, days, nil)
	defer in.Release()
	out := mustApply(t, bind(t, "birth_year", nil), mem, in)
	defer out.Release()
	got := int32Values(t, out)
	for i, d := range days {
		// the oracle: the standard library's proleptic Gregorian calendar
		want := int32(time.Unix(int64(d)*86400, 0).UTC().Year())
		if got[i] == nil || *got[i] != want {
			t.Errorf("date32 %d: got %v, want %d", d, got[i], want)
		}
	}
}

func TestBirthYearTimestamps(t *testing.T) {
	mem := checkedMem(t)
	// 1989-12-31T20:00Z is 1990-01-01 04:00 in Shanghai
	at := time.Date(1989, 12, 31, 20, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		zone, colZone string
		want          int32
	}{
		{"UTC", "UTC", 1989},
		{"Asia/Shanghai", "UTC", 1990},
		{"Asia/Shanghai", "Asia/Shanghai", 1990},
		{"Asia/Shanghai", "", 1989}, // without a zone the ticks are the wall clock
	} {
		for _, unit := range []arrow.TimeUnit{arrow.Second, arrow.Millisecond, arrow.Microsecond, arrow.Nanosecond} {
			b := array.NewTimestampBuilder(mem, &arrow.TimestampType{Unit: unit, TimeZone: c.colZone})
			b.Append(arrow.Timestamp(timeToTicks(at, unit)))
			b.Append(arrow.Timestamp(timeToTicks(time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC), unit)))
			b.AppendNull()
			in := b.NewArray()
			b.Release()
			out := mustApply(t, bind(t, "birth_year", map[string]any{"zone": c.zone}), mem, in)
			got := int32Values(t, out)
			if got[0] == nil || *got[0] != c.want || got[2] != nil {
				t.Errorf("zone %s, column %q, %s: got %v, want %d", c.zone, c.colZone, unit, got[0], c.want)
			}
			if c.zone == "UTC" && (got[1] == nil || *got[1] != 1969) {
				t.Errorf("%s: one second before the epoch gave %v", unit, got[1])
			}
			out.Release()
			in.Release()
		}
	}
}

// FuzzResidentID: a string the reader accepts has 17 digits, a correct check
// character and a real date, and the year in it is the year returned.
func FuzzResidentID(f *testing.F) {
	for _, c := range residentIDCases {
		f.Add(c.id)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d := residentIDBirth([]byte(s))
		if !d.ok {
			return
		}
		v := strings.TrimSpace(s)
		if len(v) != 18 {
			t.Fatalf("%q accepted", s)
		}
		sum := 0
		for i := 0; i < 17; i++ {
			sum += int(v[i]-'0') * residentIDWeights[i]
		}
		check := map[int]byte{0: '1', 1: '0', 2: 'X', 3: '9', 4: '8', 5: '7', 6: '6', 7: '5', 8: '4', 9: '3', 10: '2'}[sum%11]
		if strings.ToUpper(v[17:]) != string(check) {
			t.Fatalf("%q accepted with a wrong check character", s)
		}
		y, _ := strconv.Atoi(v[6:10])
		tm, err := time.Parse("20060102", v[6:14])
		if err != nil || int64(y) != d.year || tm.Year() != y || int(tm.Month()) != d.month || tm.Day() != d.day {
			t.Fatalf("%q: read %+v (%v)", s, d, err)
		}
	})
}

func ageBandOf(t *testing.T, mem memory.Allocator, params map[string]any, now time.Time, in arrow.Array) []*string {
	t.Helper()
	spec, _ := Lookup("age_band")
	tr, _, err := spec.Bind(params, Env{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	out := mustApply(t, tr, mem, in)
	defer out.Release()
	return readStrings(t, out)
}

func TestAgeBand(t *testing.T) {
	mem := checkedMem(t)
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		birth arrow.Date32
		want  *string
	}{
		{day(2026, 11, 1), sp("0-13")}, // born today: 0
		{day(2026, 11, 2), nil},        // born tomorrow
		{day(2012, 11, 1), sp("14-17")},
		{day(2012, 11, 2), sp("0-13")},
		{day(2008, 11, 1), sp("18-24")},
		{day(2008, 11, 2), sp("14-17")},
		{day(2001, 11, 1), sp("25-34")},
		{day(1991, 11, 2), sp("25-34")},
		{day(1991, 11, 1), sp("35-44")},
		{day(1981, 11, 1), sp("45-54")},
		{day(1971, 11, 1), sp("55-64")},
		{day(1961, 11, 2), sp("55-64")},
		{day(1961, 11, 1), sp("65+")},
		{day(1900, 1, 1), sp("65+")},
		{day(9999, 1, 1), nil},
	}
	var days []arrow.Date32
	for _, c := range cases {
		days = append(days, c.birth)
	}
	valid := make([]bool, len(days)+1) // every value valid but a last NULL
	for i := range days {
		valid[i] = true
	}
	in := date32Array(mem, append(days, 0), valid)
	defer in.Release()
	got := ageBandOf(t, mem, nil, now, in)
	for i, c := range cases {
		if deref(got[i]) != deref(c.want) || (got[i] == nil) != (c.want == nil) {
			t.Errorf("born %s: got %s, want %s", time.Unix(int64(c.birth)*86400, 0).UTC().Format(time.DateOnly), deref(got[i]), deref(c.want))
		}
	}
	if got[len(got)-1] != nil {
		t.Error("NULL gave a band")
	}
}

func TestAgeBandLeapDayZoneAndBands(t *testing.T) {
	mem := checkedMem(t)
	leap := date32Array(mem, []arrow.Date32{day(2008, 2, 29)}, nil)
	defer leap.Release()
	// born 29 February 2008: 18 on 1 March 2026, still 17 on 28 February
	for _, c := range []struct {
		now  time.Time
		want string
	}{
		{time.Date(2026, 2, 28, 23, 59, 0, 0, time.UTC), "14-17"},
		{time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), "18-24"},
		{time.Date(2028, 2, 29, 0, 0, 0, 0, time.UTC), "18-24"},
	} {
		if got := ageBandOf(t, mem, nil, c.now, leap); deref(got[0]) != c.want {
			t.Errorf("now %s: got %s, want %s", c.now, deref(got[0]), c.want)
		}
	}
	// now 2026-10-31T20:00Z is already 1 November in Shanghai
	now := time.Date(2026, 10, 31, 20, 0, 0, 0, time.UTC)
	born := date32Array(mem, []arrow.Date32{day(2008, 11, 1)}, nil)
	defer born.Release()
	if got := ageBandOf(t, mem, map[string]any{"zone": "Asia/Shanghai"}, now, born); deref(got[0]) != "18-24" {
		t.Errorf("Shanghai: %s", deref(got[0]))
	}
	if got := ageBandOf(t, mem, nil, now, born); deref(got[0]) != "14-17" {
		t.Errorf("UTC: %s", deref(got[0]))
	}
	// custom bands, resident identity numbers, plain and dictionary
	ids := []*string{sp("11010519491231002X"), sp("440305200811021232"), sp("440305200811011237"), sp("110105194912310021"), nil}
	want := []*string{sp("65+"), sp("0-17"), sp("18-64"), nil, nil}
	for _, in := range []arrow.Array{stringArray(mem, ids), dictStringArray(t, mem, ids)} {
		got := ageBandOf(t, mem, map[string]any{"bands": []int64{0, 18, 65}}, time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC), in)
		for i := range want {
			if deref(got[i]) != deref(want[i]) {
				t.Errorf("%s %s: got %s, want %s", in.DataType(), deref(ids[i]), deref(got[i]), deref(want[i]))
			}
		}
		in.Release()
	}
}

func TestAgeBandParams(t *testing.T) {
	spec, _ := Lookup("age_band")
	now := Env{Now: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}
	for _, c := range []struct {
		params map[string]any
		env    Env
		want   string
	}{
		{nil, Env{}, "reference time"},
		{map[string]any{"bands": []int64{18, 65}}, now, "must start at 0"},
		{map[string]any{"bands": []int64{0, 18, 18}}, now, "strictly ascending"},
		{map[string]any{"bands": []int64{0, 300}}, now, "between 0 and 200"},
		{map[string]any{"bands": []int64{}}, now, "must not be empty"},
		{map[string]any{"zone": "Mars/Olympus"}, now, "Mars/Olympus"},
	} {
		if _, _, err := spec.Bind(c.params, c.env); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want %q", c.params, err, c.want)
		}
	}
	tr, _, err := spec.Bind(nil, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []arrow.DataType{arrow.PrimitiveTypes.Int64, arrow.PrimitiveTypes.Float64,
		&arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.FixedWidthTypes.Date32}} {
		if _, err := tr.OutputType(typ); err == nil {
			t.Errorf("age_band accepted %s", typ)
		}
	}
}

// FuzzBirthStrings: on any string birth_year gives NULL or a year from 1800
// to 9999, and age_band gives a default band exactly when the year is not
// after now's.
func FuzzBirthStrings(f *testing.F) {
	for _, c := range residentIDCases {
		f.Add(c.id)
	}
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	year := bind(f, "birth_year", nil)
	spec, _ := Lookup("age_band")
	band, _, err := spec.Bind(nil, Env{Now: now})
	if err != nil {
		f.Fatal(err)
	}
	labels := map[string]bool{"0-13": true, "14-17": true, "18-24": true, "25-34": true, "35-44": true, "45-54": true,
		"55-64": true, "65+": true}
	f.Fuzz(func(t *testing.T, s string) {
		mem := checkedMem(t)
		in := stringArray(mem, []*string{&s})
		defer in.Release()
		y := mustApply(t, year, mem, in)
		defer y.Release()
		b := applyStrings(t, mem, band, []*string{&s})[0]
		yv := int32Values(t, y)[0]
		if yv != nil && (*yv < 1800 || *yv > 9999) {
			t.Fatalf("%q: year %d", s, *yv)
		}
		if b != nil && !labels[*b] {
			t.Fatalf("%q: band %q", s, *b)
		}
		if (b != nil) != (yv != nil && *yv < 2026) && (yv == nil || *yv != 2026) {
			t.Fatalf("%q: year %v but band %v", s, yv, deref(b))
		}
	})
}
