package transforms

import (
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// megabyte is a 1 MiB value that mixes digits, an e-mail and a phone number,
// so that every string transform has something to do with it.
var megabyte = strings.Repeat("华为手机 13800138000 a.b@qq.com https://x.cn/p?q=1#f ", 1<<20/64)

// edgeStrings are the cases every string transform is tested on.
func edgeStrings() []*string {
	return []*string{
		nil, sp(""), sp(" "), sp("\xff\xfe invalid utf-8 \xc3"), sp("张三"), sp(megabyte), nil,
		sp("13800138000"), sp("a.b@qq.com"), sp("1.2.3.4"), sp("https://a.com/x?y#z"),
	}
}

// randomText builds strings from fragments that sit on the rules' boundaries.
func randomText(r *rand.Rand) string {
	frags := []string{"1", "3", "13800138000", "19912345678", "@", ".", "a", "cc", "qq.com", "163.com", "-", "_",
		" ", "，", "中文", "?", "#", "&", "=", "https://", "item.example.com/", "1.2.3.4", "::", ":", "ffff", "0", "+86",
		"\xff", "%E4", "１３８"}
	var b strings.Builder
	for n := r.IntN(10); n >= 0; n-- {
		b.WriteString(frags[r.IntN(len(frags))])
	}
	return b.String()
}

func randomStrings(seed uint64, n int) []*string {
	r := rand.New(rand.NewPCG(seed, 99))
	out := make([]*string, n)
	for i := range out {
		if r.IntN(15) != 0 {
			out[i] = sp(randomText(r))
		}
	}
	return out
}

// checkAgainst applies tr to vals (plain and dictionary) and compares every
// output with the oracle; want returns ok=false for NULL.
func checkAgainst(t *testing.T, tr Transform, vals []*string, want func(string) (string, bool)) {
	t.Helper()
	mem := checkedMem(t)
	got := applyStrings(t, mem, tr, vals)
	bad := 0
	for i, v := range vals {
		var w *string
		if v != nil {
			if x, ok := want(*v); ok {
				w = &x
			}
		}
		if deref(w) != deref(got[i]) || (w == nil) != (got[i] == nil) {
			bad++
			if bad < 10 {
				in := deref(v)
				if len(in) > 80 {
					in = in[:80] + "…"
				}
				t.Errorf("input %q: got %.80q, want %.80q", in, deref(got[i]), deref(w))
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d values differ from the reference", bad, len(vals))
	}
}

func TestPseudonymizeWorkloadVectors(t *testing.T) {
	// WORKLOAD.md, "Pseudonym": test vectors for K = 000102…1f.
	vectors := map[string]string{
		"":                                     "d38b42096d80f45f826b44a9d5607de7",
		"1000000000":                           "3b29516fd4c9829846ccf044d6f00c2b",
		"-42":                                  "2156a1be40679f64ac98cbf96a0f1ecb",
		"867365051234648":                      "d234fbd235dce964fb710775975d5eeb",
		"00000000-0000-0000-0000-000000000000": "9ee10e15cdc6416a010fbc5e243859ff",
		"张三":                                   "f816bf03f906c81a577a6e55c71fb0f2",
	}
	tr := bind(t, "pseudonymize", nil)
	var in []*string
	for m := range vectors {
		in = append(in, sp(m))
	}
	checkAgainst(t, tr, in, func(s string) (string, bool) { return vectors[s], true })

	// RFC 4231 test case 2, truncated to 16 bytes.
	spec, _ := Lookup("pseudonymize")
	jefe, _, err := spec.Bind(nil, Env{Key: []byte("Jefe")})
	if err != nil {
		t.Fatal(err)
	}
	checkAgainst(t, jefe, []*string{sp("what do ya want for nothing?")}, func(string) (string, bool) {
		return "5bdcc146bf60754e6a042426089575c7", true
	})
}

func TestPseudonymizeStrings(t *testing.T) {
	vals := append(edgeStrings(), randomStrings(1, 3000)...)
	vals = append(vals, vals[:200]...) // repeats exercise the per-batch memo
	checkAgainst(t, bind(t, "pseudonymize", nil), vals, func(s string) (string, bool) {
		return RefPseudonym(benchKey, s), true
	})
}

func TestPseudonymizeIntegers(t *testing.T) {
	mem := checkedMem(t)
	ids := []int64{0, 1, -1, -42, 9, 10, 1000000000, math.MaxInt64, math.MinInt64, 4294967295, 1000000000}
	r := rand.New(rand.NewPCG(3, 4))
	for len(ids) < 2000 {
		ids = append(ids, r.Int64N(6_000_000_000)-1_000_000_000)
	}
	valid := make([]bool, len(ids))
	for i := range valid {
		valid[i] = i%17 != 5
	}
	b := array.NewInt64Builder(mem)
	b.AppendValues(ids, valid)
	in := b.NewArray()
	b.Release()
	defer in.Release()
	tr := bind(t, "pseudonymize", nil)
	out, err := tr.Apply(mem, in)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Release()
	got := readStrings(t, out)
	for i, id := range ids {
		if !valid[i] {
			if got[i] != nil {
				t.Errorf("NULL user_id gave %q", *got[i])
			}
			continue
		}
		if w := RefPseudonymUserID(benchKey, id); deref(got[i]) != w {
			t.Errorf("user_id %d: got %s, want %s", id, deref(got[i]), w)
		}
	}

	// narrower and unsigned integer types hash their decimal text too
	i32 := array.NewInt32Builder(mem)
	i32.AppendValues([]int32{-42, 7, math.MaxInt32}, nil)
	u64 := array.NewUint64Builder(mem)
	u64.AppendValues([]uint64{math.MaxUint64, 0}, nil)
	for _, c := range []struct {
		arr  arrow.Array
		want []string
	}{
		{i32.NewArray(), []string{"-42", "7", "2147483647"}},
		{u64.NewArray(), []string{"18446744073709551615", "0"}},
	} {
		out, err := tr.Apply(mem, c.arr)
		if err != nil {
			t.Fatal(err)
		}
		for i, s := range readStrings(t, out) {
			if w := RefPseudonym(benchKey, c.want[i]); deref(s) != w {
				t.Errorf("%s value %s: got %s, want %s", c.arr.DataType(), c.want[i], deref(s), w)
			}
		}
		out.Release()
		c.arr.Release()
	}
	i32.Release()
	u64.Release()
}

// TestPseudonymizeHashesDistinctValuesOnce: each distinct value of a batch
// (or each dictionary entry) costs one HMAC, however often it repeats.
func TestPseudonymizeHashesDistinctValuesOnce(t *testing.T) {
	mem := checkedMem(t)
	var vals []*string
	for i := 0; i < 1000; i++ {
		vals = append(vals, sp(strconv.Itoa(i%10)))
	}
	vals = append(vals, nil, nil)
	tr := bind(t, "pseudonymize", nil).(*pseudonymize)
	for _, in := range []arrow.Array{stringArray(mem, vals), dictStringArray(t, mem, vals)} {
		before := tr.hashes.Load()
		out, err := tr.Apply(mem, in)
		if err != nil {
			t.Fatal(err)
		}
		if n := tr.hashes.Load() - before; n != 10 {
			t.Errorf("%s: %d HMACs for 10 distinct values", in.DataType(), n)
		}
		out.Release()
		in.Release()
	}
	b := array.NewInt64Builder(mem)
	for i := 0; i < 1000; i++ {
		b.Append(int64(i % 7))
	}
	ints := b.NewArray()
	b.Release()
	before := tr.hashes.Load()
	out, err := tr.Apply(mem, ints)
	if err != nil {
		t.Fatal(err)
	}
	if n := tr.hashes.Load() - before; n != 7 {
		t.Errorf("int64: %d HMACs for 7 distinct values", n)
	}
	out.Release()
	ints.Release()
}

func TestPseudonymizeRefusesMissingKey(t *testing.T) {
	spec, _ := Lookup("pseudonymize")
	if _, _, err := spec.Bind(nil, Env{}); err == nil {
		t.Fatal("pseudonymize bound without a key")
	}
}

func TestPseudonymizeKeysDiffer(t *testing.T) {
	mem := checkedMem(t)
	spec, _ := Lookup("pseudonymize")
	other := append([]byte(nil), benchKey...)
	other[0] ^= 1
	a, _, _ := spec.Bind(nil, Env{Key: benchKey})
	b, _, _ := spec.Bind(nil, Env{Key: other})
	vals := []*string{sp("867365051234648")}
	if x, y := applyStrings(t, mem, a, vals), applyStrings(t, mem, b, vals); *x[0] == *y[0] {
		t.Fatal("two keys gave the same pseudonym: pseudonyms would join across destinations")
	}
}

func TestGeneralizeIPBench(t *testing.T) {
	// Examples from WORKLOAD.md ("IP"), then many more against the reference.
	tr := bind(t, "generalize_ip", map[string]any{"variant": "bench"})
	examples := map[string]*string{
		"1.2.3.4": sp("1.2.3.0"), "2408:8207:1851:a::1": sp("2408:8207:1851::"), "0:abcd::1": sp("0:abcd::"),
		"::1": sp("::"), "2001:DB8::": sp("2001:db8::"), "::ffff:1.2.3.4": sp("::"),
		"fe80::1%eth0": nil, "[::1]": nil, "1.2.3.4:80": nil, "1.2.3.0/24": nil, "1.2.3.4, 5.6.7.8": nil,
		"unknown": nil, "-": nil, "": nil, " 1.2.3.4": nil, "01.2.3.4": nil, "1.2.3.256": nil,
		"2408:8207:0000:0000:0000:0000:0000:0001": sp("2408:8207::"),
	}
	var in []*string
	for k := range examples {
		in = append(in, sp(k))
	}
	checkAgainst(t, tr, in, func(s string) (string, bool) {
		w := examples[s]
		if w == nil {
			return "", false
		}
		return *w, true
	})
	vals := append(edgeStrings(), randomStrings(2, 3000)...)
	for i := 0; i < 1000; i++ {
		r := rand.New(rand.NewPCG(uint64(i), 5))
		vals = append(vals, sp(randomIP(r)))
	}
	checkAgainst(t, tr, vals, RefIP)
}

// randomIP writes valid and nearly valid IPv4 and IPv6 text.
func randomIP(r *rand.Rand) string {
	switch r.IntN(4) {
	case 0:
		return strings.Join([]string{itoa(r.IntN(300)), itoa(r.IntN(256)), itoa(r.IntN(256)), itoa(r.IntN(256))}, ".")
	case 1:
		g := make([]string, 8)
		for i := range g {
			g[i] = strings.ToUpper(hexGroup(r))
		}
		return strings.Join(g, ":")
	case 2:
		return hexGroup(r) + ":" + hexGroup(r) + "::" + hexGroup(r)
	default:
		return "::ffff:" + itoa(r.IntN(256)) + ".1.2." + itoa(r.IntN(256))
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func hexGroup(r *rand.Rand) string {
	const digits = "0123456789abcdef"
	n := 1 + r.IntN(4)
	b := make([]byte, n)
	for i := range b {
		b[i] = digits[r.IntN(16)]
	}
	return string(b)
}

func TestGeneralizeIPStandard(t *testing.T) {
	tr := bind(t, "generalize_ip", nil)
	cases := map[string]*string{
		"120.229.1.7":      sp("120.229.1.0"),
		" 120.229.1.7\n":   sp("120.229.1.0"),
		"::ffff:1.2.3.4":   sp("1.2.3.0"),
		"fe80::1%eth0":     sp("fe80::"),
		"240e:3b0:1::5":    sp("240e:3b0:1::"),
		"unknown":          nil,
		"1.2.3.4, 5.6.7.8": nil,
		"":                 nil,
	}
	var in []*string
	for k := range cases {
		in = append(in, sp(k))
	}
	checkAgainst(t, tr, in, func(s string) (string, bool) {
		if w := cases[s]; w != nil {
			return *w, true
		}
		return "", false
	})
	// a /16 for IPv4 and /32 for IPv6
	wide := bind(t, "generalize_ip", map[string]any{"ipv4_prefix": int64(16), "ipv6_prefix": int64(32)})
	checkAgainst(t, wide, []*string{sp("10.20.30.40"), sp("2408:8207:1851::1")}, func(s string) (string, bool) {
		return map[string]string{"10.20.30.40": "10.20.0.0", "2408:8207:1851::1": "2408:8207::"}[s], true
	})
}

func TestURLStrip(t *testing.T) {
	examples := []*string{sp("?"), sp("#"), sp("?#"), sp("#?"), sp("https://a.com/x?y#z"), sp("https://a.com/x#z?y"),
		sp("https://m.example.com/详情/1.html#评价")}
	vals := append(append(edgeStrings(), examples...), randomStrings(3, 2000)...)
	checkAgainst(t, bind(t, "url_strip", nil), vals, func(s string) (string, bool) { return RefURL(s), true })
}

func TestScrubBenchDetectors(t *testing.T) {
	tr := bind(t, "scrub", map[string]any{"detectors": []string{"email_bench", "phone_bench"}})
	examples := []*string{sp("13812345678@163.com"), sp("13800138000,13900139000"), sp("+86 13800138000"),
		sp("+8613800138000"), sp("联系13800138000谢谢"), sp("abc@def.com13800138000"), sp("１３８００１３８０００")}
	vals := append(append(edgeStrings(), examples...), randomStrings(4, 4000)...)
	checkAgainst(t, tr, vals, func(s string) (string, bool) { return RefRedact(s), true })
}

// TestScrubOrder: the detectors scan the original text in one pass; the
// order decides only between matches of equal length. Listed the other way
// round, the bench detectors still give the reference result, where
// applying them one after the other would not ("13812345678.a@b.cc": phone
// first leaves ".a@b.cc" for the e-mail pattern).
func TestScrubOrder(t *testing.T) {
	tr := bind(t, "scrub", map[string]any{"detectors": []string{"phone_bench", "email_bench"}})
	vals := append([]*string{sp("13812345678@163.com"), sp("13812345678.a@b.cc"), sp("a@b.cc 13800138000 x@yy.com")},
		randomStrings(6, 3000)...)
	checkAgainst(t, tr, vals, func(s string) (string, bool) { return RefRedact(s), true })
}

// TestScrubDefault: without a detectors parameter scrub uses the full
// validating set; dictionary input, NULLs, invalid UTF-8 and full-width
// text included.
func TestScrubDefault(t *testing.T) {
	tr := bind(t, "scrub", nil)
	want := map[string]string{
		"麻烦放快递柜，电话138 1234 5678，谢谢":                   "麻烦放快递柜，电话[PHONE]，谢谢",
		"身份证11010519491231002X，卡号6222 0200 0000 0007": "身份证[ID_CARD]，卡号[BANK_CARD]",
		"13812345678@163.com":                          "[EMAIL]",
		"税号91350100M000100Y43 IMEI:35-209900-176148-1": "税号[USCC] IMEI:[IMEI]",
		"来自2408:8207:1851:a::1，mac 00-1a-2b-3c-4d-5e":  "来自[IP]，mac [MAC]",
		"联系１３８１２３４５６７８或ｚｈａｎｇ＠ｑｑ．ｃｏｍ":                   "联系[PHONE]或[EMAIL]",
		"订单号20261101123045，客服400-820-8820":             "订单号20261101123045，客服400-820-8820",
		"\xff13812345678\xfe":                          "\xff[PHONE]\xfe",
		"":                                             "",
	}
	var vals []*string
	for in := range want {
		vals = append(vals, sp(in))
	}
	vals = append(vals, nil, sp(megabyte))
	want[megabyte] = strings.NewReplacer("13800138000", "[PHONE]", "a.b@qq.com", "[EMAIL]").Replace(megabyte)
	checkAgainst(t, tr, vals, func(s string) (string, bool) {
		w, ok := want[s]
		if !ok {
			t.Fatalf("no expectation for %q", s)
		}
		return w, true
	})
}

func TestTruncateTimeHour(t *testing.T) {
	mem := checkedMem(t)
	ms := []int64{0, -1, 1, 3599999, 3600000, -3600000, -3600001}
	r := rand.New(rand.NewPCG(13, 14))
	for len(ms) < 2000 {
		ms = append(ms, -2_000_000_000_000+r.Int64N(6_000_000_000_000))
	}
	tr := bind(t, "truncate_time", map[string]any{"unit": "hour"})
	for _, unit := range []arrow.TimeUnit{arrow.Second, arrow.Millisecond, arrow.Microsecond, arrow.Nanosecond} {
		typ := &arrow.TimestampType{Unit: unit, TimeZone: "UTC"}
		b := array.NewTimestampBuilder(mem, typ)
		for i, m := range ms {
			if i%50 == 3 {
				b.AppendNull()
				continue
			}
			b.Append(arrow.Timestamp(timeToTicks(time.UnixMilli(m), unit)))
		}
		in := b.NewArray()
		b.Release()
		out, err := tr.Apply(mem, in)
		if err != nil {
			t.Fatal(err)
		}
		if !arrow.TypeEqual(out.DataType(), typ) {
			t.Errorf("output type %s, want %s", out.DataType(), typ)
		}
		ts := out.(*array.Timestamp)
		for i, m := range ms {
			if i%50 == 3 {
				if !ts.IsNull(i) {
					t.Errorf("NULL became %v", ts.Value(i))
				}
				continue
			}
			want := timeToTicks(RefHour(time.UnixMilli(m)), unit)
			if got := int64(ts.Value(i)); got != want {
				t.Errorf("%s hour(%d ms) = %d, want %d", unit, m, got, want)
			}
		}
		out.Release()
		in.Release()
	}
}

func TestTruncateTimeDayInZone(t *testing.T) {
	mem := checkedMem(t)
	tr := bind(t, "truncate_time", map[string]any{"unit": "day", "zone": "Asia/Shanghai"})
	typ := &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}
	b := array.NewTimestampBuilder(mem, typ)
	// 2026-10-31T17:00Z is 2026-11-01 01:00 in Shanghai (UTC+8): the local day
	// began at 2026-10-31T16:00Z. 15:59:59.999Z is still 31 October there.
	b.Append(arrow.Timestamp(time.Date(2026, 10, 31, 17, 0, 0, 0, time.UTC).UnixMilli()))
	b.Append(arrow.Timestamp(time.Date(2026, 10, 31, 15, 59, 59, 999e6, time.UTC).UnixMilli()))
	in := b.NewArray()
	b.Release()
	defer in.Release()
	out, err := tr.Apply(mem, in)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Release()
	want := []time.Time{time.Date(2026, 10, 31, 16, 0, 0, 0, time.UTC), time.Date(2026, 10, 30, 16, 0, 0, 0, time.UTC)}
	for i, w := range want {
		if got := time.UnixMilli(int64(out.(*array.Timestamp).Value(i))).UTC(); !got.Equal(w) {
			t.Errorf("value %d: got %s, want %s", i, got, w)
		}
	}
}

func TestTruncateTimeRefusesNaiveTimestamps(t *testing.T) {
	tr := bind(t, "truncate_time", nil)
	if _, err := tr.OutputType(&arrow.TimestampType{Unit: arrow.Millisecond}); err == nil {
		t.Fatal("a timestamp without time zone was accepted")
	}
}

func TestRound2(t *testing.T) {
	mem := checkedMem(t)
	xs := []float64{0, 1, -1, 0.005, -0.005, 0.015, 0.025, 1.005, 2.675, 31.125, 31.115, 121.475, 53.555, -0.001,
		1e15, 1e300, -1e300, math.MaxFloat64, 5e-324, 0.125, 0.375, 39.904989, 116.405285, math.Inf(1), math.NaN()}
	r := rand.New(rand.NewPCG(11, 12))
	for len(xs) < 3000 {
		switch r.IntN(3) {
		case 0:
			xs = append(xs, float64(18_160_000+r.Int64N(53_560_000-18_160_000))/1e6)
		case 1:
			xs = append(xs, float64(r.Int64N(20_000_000)*10+5)/1000/1e3)
		default:
			xs = append(xs, (r.Float64()-0.5)*400)
		}
	}
	// WORKLOAD.md's worked examples, spelled out.
	spelled := map[float64]float64{1.005: 1, 2.675: 2.68, 31.125: 31.13, -0.005: -0.01, 116.405285: 116.41}
	valid := make([]bool, len(xs))
	for i := range valid {
		valid[i] = i%40 != 7
	}
	b := array.NewFloat64Builder(mem)
	b.AppendValues(xs, valid)
	in := b.NewArray()
	b.Release()
	defer in.Release()
	out, err := bind(t, "round", nil).Apply(mem, in)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Release()
	f := out.(*array.Float64)
	for i, x := range xs {
		if !valid[i] {
			if !f.IsNull(i) {
				t.Errorf("NULL became %v", f.Value(i))
			}
			continue
		}
		want := RefRound2(x)
		if w, ok := spelled[x]; ok && w != want {
			t.Fatalf("oracle disagrees with WORKLOAD.md on %v", x)
		}
		if got := f.Value(i); math.Float64bits(got) != math.Float64bits(want) {
			t.Errorf("round(%v, 2) = %v, want %v", x, got, want)
		}
	}
}

func TestLocalToInstant(t *testing.T) {
	mem := checkedMem(t)
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	b := array.NewTimestampBuilder(mem, &arrow.TimestampType{Unit: arrow.Millisecond})
	// wall clock 2026-11-01 08:00:00 read as Shanghai time is 00:00Z
	b.Append(arrow.Timestamp(time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC).UnixMilli()))
	b.AppendNull()
	in := b.NewArray()
	b.Release()
	defer in.Release()
	out, err := LocalToInstant(mem, in, loc)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Release()
	ts := out.(*array.Timestamp)
	if got := time.UnixMilli(int64(ts.Value(0))).UTC(); !got.Equal(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("got %s", got)
	}
	if !ts.IsNull(1) || ts.DataType().(*arrow.TimestampType).TimeZone != "UTC" {
		t.Errorf("NULL or zone lost: %s", ts.DataType())
	}
}

// TestKeepIsIdentity also covers dictionary input, which keep passes through.
func TestKeepIsIdentity(t *testing.T) {
	vals := append(edgeStrings(), randomStrings(5, 100)...)
	checkAgainst(t, bind(t, "keep", nil), vals, func(s string) (string, bool) { return s, true })
}

func TestSpecValidation(t *testing.T) {
	cases := []struct {
		name   string
		params map[string]any
		want   string
	}{
		{"round", map[string]any{"digits": int64(99)}, "between 0 and 15"},
		{"round", map[string]any{"digit": int64(2)}, `unknown parameter "digit"`},
		{"scrub", map[string]any{"detectors": []string{}}, `"detectors" must not be empty`},
		{"scrub", map[string]any{"detectors": []string{"phone_bench", "nope"}}, `"nope" is not one of`},
		{"generalize_ip", map[string]any{"variant": "fast"}, `"fast" is not one of`},
		{"truncate_time", map[string]any{"zone": "Mars/Olympus"}, "Mars/Olympus"},
		{"url_strip", map[string]any{"keep": "path"}, "takes no parameters"},
		{"round", map[string]any{"digits": "2"}, "must be an integer"},
	}
	for _, c := range cases {
		spec, err := Lookup(c.name)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = spec.Bind(c.params, Env{Key: benchKey})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %v: error %v, want it to mention %q", c.name, c.params, err, c.want)
		}
	}
	if _, err := Lookup("hash"); err == nil || !strings.Contains(err.Error(), "pseudonymize") {
		t.Errorf("Lookup(hash) = %v, want the list of known transforms", err)
	}
}
