package transforms

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// refShift is the definition of shift_date's offset, written out
// independently: HMAC-SHA256(key, "deid shift_date v1" || subject), first
// 8 bytes big-endian, mod 2·max, onto [-max, -1] ∪ [1, max].
func refShift(key []byte, subject string, max int64) int64 {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("deid shift_date v1" + subject))
	k := int64(binary.BigEndian.Uint64(m.Sum(nil)[:8]) % uint64(2*max))
	if k < max {
		return k - max
	}
	return k - max + 1
}

func TestShiftDateVectors(t *testing.T) {
	// computed with Python's hmac module for key 000102…1f
	for _, v := range []struct {
		subject string
		max     int64
		want    int64
	}{
		{"1000000000", 30, -16}, {"42", 30, 19}, {"u-1", 30, -22},
		{"1000000000", 1, -1}, {"42", 1, -1},
		{"1000000000", 3650, -3576}, {"42", 3650, -3622}, {"u-1", 3650, -2042},
	} {
		if got := refShift(benchKey, v.subject, v.max); got != v.want {
			t.Errorf("oracle: %s max %d: %d, want %d", v.subject, v.max, got, v.want)
		}
	}
}

func int64Array(mem memory.Allocator, vals []int64, valid []bool) arrow.Array {
	b := array.NewInt64Builder(mem)
	defer b.Release()
	b.AppendValues(vals, valid)
	return b.NewArray()
}

func date32Array(mem memory.Allocator, vals []arrow.Date32, valid []bool) arrow.Array {
	b := array.NewDate32Builder(mem)
	defer b.Release()
	b.AppendValues(vals, valid)
	return b.NewArray()
}

func applySubject(t *testing.T, tr Transform, mem memory.Allocator, in, subject arrow.Array) arrow.Array {
	t.Helper()
	out, err := tr.(SubjectAware).ApplySubject(mem, in, subject)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func day(y int, m time.Month, d int) arrow.Date32 {
	return arrow.Date32(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400)
}

func TestShiftDateDates(t *testing.T) {
	mem := checkedMem(t)
	tr := bind(t, "shift_date", nil)
	// the spec's example: 2026-10-31 of subject 1000000000 moves 16 days back
	in := date32Array(mem, []arrow.Date32{day(2026, 10, 31), day(2026, 11, 30), 0, day(2026, 1, 1), 5, math.MaxInt32 - 5, math.MinInt32 + 5},
		[]bool{true, true, false, true, true, true, true})
	subj := int64Array(mem, []int64{1000000000, 1000000000, 42, 0, 7, 42, 1000000000}, []bool{true, true, true, false, true, true, true})
	defer in.Release()
	defer subj.Release()
	out := applySubject(t, tr, mem, in, subj).(*array.Date32)
	defer out.Release()
	want := []*arrow.Date32{
		ptr(day(2026, 10, 15)), ptr(day(2026, 11, 14)), // same subject: same shift, the 30-day interval kept
		nil, // NULL value
		nil, // NULL subject
		ptr(5 + arrow.Date32(refShift(benchKey, "7", 30))),
		nil, // MaxInt32-5 + 19 days is past date32's range
		nil, // MinInt32+5 - 16 days is before it
	}
	for i, w := range want {
		switch {
		case w == nil && out.IsValid(i):
			t.Errorf("row %d: got %d, want NULL", i, out.Value(i))
		case w != nil && (out.IsNull(i) || out.Value(i) != *w):
			t.Errorf("row %d: got %v (valid %v), want %d", i, out.Value(i), out.IsValid(i), *w)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestShiftDateTimestamps(t *testing.T) {
	mem := checkedMem(t)
	base := time.Date(2026, 10, 31, 14, 37, 12, 345678901, time.UTC)
	for _, zone := range []string{"UTC", "Asia/Shanghai", ""} {
		for _, unit := range []arrow.TimeUnit{arrow.Second, arrow.Millisecond, arrow.Microsecond, arrow.Nanosecond} {
			typ := &arrow.TimestampType{Unit: unit, TimeZone: zone}
			b := array.NewTimestampBuilder(mem, typ)
			vals := []time.Time{base, base.Add(90 * time.Minute), base.Add(-400 * 24 * time.Hour), base}
			for _, v := range vals {
				b.Append(arrow.Timestamp(timeToTicks(v, unit)))
			}
			b.AppendNull()
			in := b.NewArray()
			b.Release()
			subjects := stringArray(mem, []*string{sp("u-1"), sp("u-1"), sp("42"), nil, sp("42")})
			tr := bind(t, "shift_date", nil)
			out := applySubject(t, tr, mem, in, subjects).(*array.Timestamp)
			if !arrow.TypeEqual(out.DataType(), typ) {
				t.Errorf("%s: output type %s", typ, out.DataType())
			}
			shifts := []int64{-22, -22, 19}
			for i, s := range shifts {
				want := timeToTicks(vals[i].Add(time.Duration(s)*24*time.Hour), unit)
				if out.IsNull(i) || int64(out.Value(i)) != want {
					t.Errorf("%s row %d: got %d, want %d", typ, i, out.Value(i), want)
				}
			}
			// one subject's interval is kept exactly
			if out.Value(1)-out.Value(0) != in.(*array.Timestamp).Value(1)-in.(*array.Timestamp).Value(0) {
				t.Errorf("%s: interval changed", typ)
			}
			if out.IsValid(3) || out.IsValid(4) {
				t.Errorf("%s: NULL subject or NULL value gave a value", typ)
			}
			out.Release()
			in.Release()
			subjects.Release()
		}
	}
	// near the end of the nanosecond range a positive shift overflows: NULL
	typ := &arrow.TimestampType{Unit: arrow.Nanosecond, TimeZone: "UTC"}
	b := array.NewTimestampBuilder(mem, typ)
	b.AppendValues([]arrow.Timestamp{math.MaxInt64 - 1, math.MinInt64 + 1}, nil)
	in := b.NewArray()
	b.Release()
	subj := int64Array(mem, []int64{42, 42}, nil)
	out := applySubject(t, bind(t, "shift_date", nil), mem, in, subj).(*array.Timestamp)
	if out.IsValid(0) || out.IsNull(1) || int64(out.Value(1)) != math.MinInt64+1+19*86400e9 {
		t.Errorf("overflow: got %v %v", out.Value(0), out.Value(1))
	}
	out.Release()
	in.Release()
	subj.Release()
}

// TestShiftDateSubjectTypes: an integer subject is hashed as its decimal
// text, whatever its width, and a string subject as its bytes, plain or
// dictionary-encoded, so the same id gives the same shift in every form.
func TestShiftDateSubjectTypes(t *testing.T) {
	mem := checkedMem(t)
	tr := bind(t, "shift_date", map[string]any{"max_days": int64(3650)})
	ids := []string{"42", "-7", "0", "127"}
	in := date32Array(mem, []arrow.Date32{0, 0, 0, 0}, nil)
	defer in.Release()
	i8 := array.NewInt8Builder(mem)
	i8.AppendValues([]int8{42, -7, 0, 127}, nil)
	i32 := array.NewInt32Builder(mem)
	i32.AppendValues([]int32{42, -7, 0, 127}, nil)
	u16 := array.NewUint16Builder(mem)
	u16.AppendValues([]uint16{42, 7, 0, 127}, nil)
	var strs []*string
	for _, s := range ids {
		strs = append(strs, sp(s))
	}
	subjects := []arrow.Array{int64Array(mem, []int64{42, -7, 0, 127}, nil), i8.NewArray(), i32.NewArray(),
		stringArray(mem, strs), dictStringArray(t, mem, strs), u16.NewArray()}
	i8.Release()
	i32.Release()
	u16.Release()
	for k, subj := range subjects {
		out := applySubject(t, tr, mem, in, subj).(*array.Date32)
		for i, id := range ids {
			if k == len(subjects)-1 && id == "-7" {
				id = "7" // the unsigned column holds 7
			}
			if w := refShift(benchKey, id, 3650); int64(out.Value(i)) != w {
				t.Errorf("%s subject %s: shift %d, want %d", subj.DataType(), id, out.Value(i), w)
			}
		}
		out.Release()
		subj.Release()
	}
}

func TestShiftDateContract(t *testing.T) {
	mem := checkedMem(t)
	tr := bind(t, "shift_date", nil)
	in := date32Array(mem, []arrow.Date32{1, 2}, nil)
	defer in.Release()
	if _, err := tr.Apply(mem, in); !errors.Is(err, ErrNeedsSubject) {
		t.Errorf("Apply without subject: %v", err)
	}
	short := int64Array(mem, []int64{1}, nil)
	defer short.Release()
	if _, err := tr.(SubjectAware).ApplySubject(mem, in, short); !errors.Is(err, ErrNeedsSubject) {
		t.Errorf("subject of another length: %v", err)
	}
	if _, err := tr.(SubjectAware).ApplySubject(mem, in, nil); !errors.Is(err, ErrNeedsSubject) {
		t.Errorf("nil subject: %v", err)
	}
	fb := array.NewFloat64Builder(mem)
	fb.AppendValues([]float64{1, 2}, nil)
	floats := fb.NewArray()
	fb.Release()
	defer floats.Release()
	if _, err := tr.(SubjectAware).ApplySubject(mem, in, floats); !errors.Is(err, ErrNeedsSubject) {
		t.Errorf("float subject: %v", err)
	}
	if _, err := tr.(SubjectAware).ApplySubject(mem, floats, in); !errors.Is(err, ErrUnsupportedType) {
		t.Errorf("float values: %v", err)
	}
	spec, _ := Lookup("shift_date")
	for _, p := range []int64{0, 3651} {
		if _, _, err := spec.Bind(map[string]any{"max_days": p}, Env{Key: benchKey}); err == nil {
			t.Errorf("max_days %d accepted", p)
		}
	}
	if _, _, err := spec.Bind(nil, Env{}); err == nil {
		t.Error("bound without a key")
	}
}

// TestShiftDateRange: over many subjects every shift in [-max, max] but 0
// occurs, and no other; each distinct subject is hashed once per batch.
func TestShiftDateRange(t *testing.T) {
	mem := checkedMem(t)
	tr := bind(t, "shift_date", map[string]any{"max_days": int64(5)}).(*shiftDate)
	const n = 4000
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = int64(i % 1000)
	}
	in := date32Array(mem, make([]arrow.Date32, n), nil)
	subj := int64Array(mem, ids, nil)
	defer in.Release()
	defer subj.Release()
	before := tr.hashes.Load()
	out := applySubject(t, tr, mem, in, subj).(*array.Date32)
	defer out.Release()
	if h := tr.hashes.Load() - before; h != 1000 {
		t.Errorf("%d HMACs for 1000 distinct subjects", h)
	}
	seen := map[int64]int{}
	for i := 0; i < n; i++ {
		s := int64(out.Value(i))
		seen[s]++
		if w := refShift(benchKey, strconv.FormatInt(ids[i], 10), 5); s != w {
			t.Fatalf("subject %d: %d, want %d", ids[i], s, w)
		}
	}
	for s := int64(-5); s <= 5; s++ {
		if (s == 0) != (seen[s] == 0) {
			t.Errorf("shift %d occurs %d times", s, seen[s])
		}
	}
	// another key gives other shifts
	other := append([]byte(nil), benchKey...)
	other[0] ^= 1
	spec, _ := Lookup("shift_date")
	tr2, _, _ := spec.Bind(map[string]any{"max_days": int64(5)}, Env{Key: other})
	out2 := applySubject(t, tr2, mem, in, subj).(*array.Date32)
	defer out2.Release()
	same := 0
	for i := 0; i < 1000; i++ {
		if out.Value(i) == out2.Value(i) {
			same++
		}
	}
	if same > 200 { // 1 in 10 by chance
		t.Errorf("%d of 1000 subjects have the same shift under two keys", same)
	}
}
