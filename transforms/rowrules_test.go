package transforms

import (
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

func micros(s string) int64 {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.UnixMicro()
}

func tsArray(mem memory.Allocator, vals ...string) arrow.Array {
	b := array.NewTimestampBuilder(mem, &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"})
	defer b.Release()
	for _, v := range vals {
		if v == "" {
			b.AppendNull()
			continue
		}
		b.Append(arrow.Timestamp(micros(v)))
	}
	return b.NewArray()
}

func keptRows(sel *Selection) []bool {
	out := make([]bool, sel.Len())
	for i := range out {
		out[i] = sel.Keeps(i)
	}
	return out
}

func TestConsent(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	first := func(a, b int64) int64 { return min(a, b) }
	// subject 7 withdrew twice: the earlier withdrawal counts
	w := NewIntSubjectValues([]int64{7, 9, 7}, []int64{micros("2026-06-01T00:00:00Z"), micros("2026-01-01T00:00:00Z"), micros("2026-03-01T00:00:00Z")}, first)
	subj := int64Array(mem, []int64{7, 7, 7, 8, 0, 9}, []bool{true, true, true, true, false, true})
	defer subj.Release()
	times := tsArray(mem, "2026-02-28T23:59:59Z", "2026-03-01T00:00:00Z", "", "2026-12-01T00:00:00Z", "2026-12-01T00:00:00Z", "2025-01-01T00:00:00Z")
	defer times.Release()
	cases := []struct {
		name string
		from bool
		want []bool
	}{
		{"all history", false, []bool{false, false, false, true, true, false}},
		{"from withdrawal: at the instant goes, NULL time goes", true, []bool{true, false, false, true, true, true}},
	}
	for _, c := range cases {
		var sel Selection
		sel.Reset(6)
		if err := (Consent{Withdrawn: w, FromWithdrawal: c.from}).Apply(subj, times, &sel); err != nil {
			t.Fatal(err)
		}
		if got := keptRows(&sel); !equalBools(got, c.want) {
			t.Errorf("%s: kept %v, want %v", c.name, got, c.want)
		}
		if sel.Removed(ReasonConsent) != int64(countFalse(c.want)) {
			t.Errorf("%s: counted %d", c.name, sel.Removed(ReasonConsent))
		}
	}
	// string ids do not match an integer list: an error, not a conversion
	s := array.NewStringBuilder(mem)
	s.Append("7")
	sa := s.NewArray()
	s.Release()
	defer sa.Release()
	var sel Selection
	sel.Reset(1)
	if err := (Consent{Withdrawn: w}).Apply(sa, nil, &sel); err == nil {
		t.Error("string subjects against an integer list: no error")
	}
	// dictionary-encoded string subjects
	ws := NewStringSubjectValues([]string{"u2"}, []int64{0}, first)
	db := array.NewDictionaryBuilder(mem, &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}).(*array.BinaryDictionaryBuilder)
	for _, v := range []string{"u1", "u2", "u1", "u2"} {
		db.AppendString(v)
	}
	da := db.NewArray()
	db.Release()
	defer da.Release()
	sel.Reset(4)
	if err := (Consent{Withdrawn: ws}).Apply(da, nil, &sel); err != nil {
		t.Fatal(err)
	}
	if got := keptRows(&sel); !equalBools(got, []bool{true, false, true, false}) {
		t.Errorf("dictionary subjects: kept %v", got)
	}
}

func TestChildren(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	day := func(s string) int32 {
		tm, _ := time.Parse("2006-01-02", s)
		return int32(tm.Unix() / 86400)
	}
	births := func(vals ...string) arrow.Array {
		b := array.NewDate32Builder(mem)
		defer b.Release()
		for _, v := range vals {
			if v == "" {
				b.AppendNull()
			} else {
				b.Append(arrow.Date32(day(v)))
			}
		}
		return b.NewArray()
	}
	cases := []struct {
		name         string
		rule         Children
		birth, event string
		child        bool
		unknown      bool
	}{
		{"13 years old", Children{Below: 14}, "2012-11-02", "2026-11-01T12:00:00Z", true, false},
		{"14th birthday", Children{Below: 14}, "2012-11-01", "2026-11-01T00:00:00Z", false, false},
		{"14th birthday, inclusive", Children{Below: 14, Inclusive: true}, "2012-11-01", "2026-11-01T00:00:00Z", true, false},
		{"15, inclusive", Children{Below: 14, Inclusive: true}, "2011-10-31", "2026-11-01T00:00:00Z", false, false},
		{"adult", Children{Below: 14}, "1990-05-05", "2026-11-01T00:00:00Z", false, false},
		{"29 February, 28 February", Children{Below: 14}, "2012-02-29", "2026-02-28T12:00:00Z", true, false},
		{"29 February, 1 March", Children{Below: 14}, "2012-02-29", "2026-03-01T00:00:00Z", false, false},
		// 2026-10-31T17:00Z is already 1 November in Shanghai: the birthday
		{"zone decides the date", Children{Below: 14, Zone: mustZone("Asia/Shanghai")}, "2012-11-01", "2026-10-31T17:00:00Z", false, false},
		{"same instant in UTC", Children{Below: 14}, "2012-11-01", "2026-10-31T17:00:00Z", true, false},
		{"NULL birth date", Children{Below: 14}, "", "2026-11-01T00:00:00Z", false, true},
		{"NULL event time", Children{Below: 14}, "2020-01-01", "", false, true},
		{"born after the event", Children{Below: 14}, "2027-01-01", "2026-11-01T00:00:00Z", false, true},
	}
	for _, c := range cases {
		b := births(c.birth)
		tm := tsArray(mem, c.event)
		var sel Selection
		sel.Reset(1)
		unknown, err := c.rule.Apply(b, tm, &sel)
		if err != nil {
			t.Fatal(err)
		}
		if sel.Keeps(0) == c.child || (unknown == 1) != c.unknown {
			t.Errorf("%s: kept %v unknown %d; want child %v unknown %v", c.name, sel.Keeps(0), unknown, c.child, c.unknown)
		}
		b.Release()
		tm.Release()
	}
	// without an event time column, ages are measured at At
	b := births("2013-01-01")
	defer b.Release()
	var sel Selection
	sel.Reset(1)
	if _, err := (Children{Below: 14, At: time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)}).Apply(b, nil, &sel); err != nil || sel.Keeps(0) {
		t.Errorf("age at now: kept %v, err %v", sel.Keeps(0), err)
	}
}

func TestChildrenFromResidentIDs(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	// check characters computed by hand with ISO 7064 MOD 11-2
	ids := []string{
		"110101201602290016", // born 2016-02-29: a child in 2026
		"11010519491231002X", // the standard's example: born 1949
		"11010519491231002x", // lowercase x is accepted
		"110101201602290012", // wrong check character: unknown age
		"110101201602300018", // valid check character, 30 February: unknown age
		"1101012016022900",   // too short
	}
	b := array.NewStringBuilder(mem)
	b.AppendValues(ids, nil)
	b.AppendNull()
	a := b.NewArray()
	b.Release()
	defer a.Release()
	var sel Selection
	sel.Reset(a.Len())
	unknown, err := (Children{Below: 14, At: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}).Apply(a, nil, &sel)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := keptRows(&sel), []bool{false, true, true, true, true, true, true}; !equalBools(got, want) || unknown != 4 {
		t.Errorf("kept %v unknown %d, want %v and 4", got, unknown, want)
	}
}

func TestBirthDaysOf(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	// a subject with two birth dates keeps the later one (the younger age)
	m := NewIntSubjectValues([]int64{5, 6, 5}, []int64{100, 200, 300}, func(a, b int64) int64 { return max(a, b) })
	subj := int64Array(mem, []int64{5, 6, 7, 0}, []bool{true, true, true, false})
	defer subj.Release()
	out, err := BirthDaysOf(mem, subj, m)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Release()
	d := out.(*array.Date32)
	if d.Value(0) != 300 || d.Value(1) != 200 || d.IsValid(2) || d.IsValid(3) {
		t.Errorf("got %v", d)
	}
}

func mustZone(name string) *time.Location {
	z, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return z
}

func equalBools(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func countFalse(b []bool) int {
	n := 0
	for _, v := range b {
		if !v {
			n++
		}
	}
	return n
}
