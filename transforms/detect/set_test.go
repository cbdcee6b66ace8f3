package detect

import (
	"math/rand/v2"
	"testing"

	"github.com/deidproject/deid/transforms/detect/fake"
)

// fixed is a test detector that reports given spans.
type fixed struct {
	name  string
	spans []Span
}

func (f fixed) Name() string                     { return f.name }
func (f fixed) Token() string                    { return "<" + f.name + ">" }
func (f fixed) Find(dst []Span, _ []byte) []Span { return append(dst, f.spans...) }

// TestSetMerge: overlapping matches of different detectors merge into their
// union, with the token of the longest, of equally long ones the one listed
// first; touching matches stay apart.
func TestSetMerge(t *testing.T) {
	text := []byte("abcdefghijklmnopqrstuvwxyz0123456789")
	cases := []struct {
		name string
		ds   []Detector
		want string
	}{
		{"chain of three, longest in the middle", []Detector{
			fixed{"z", []Span{{15, 25}}}, fixed{"y", []Span{{8, 20}}}, fixed{"x", []Span{{0, 10}}},
		}, "<y>z0123456789"},
		{"chain of three, equal lengths", []Detector{
			fixed{"z", []Span{{16, 26}}}, fixed{"y", []Span{{8, 18}}}, fixed{"x", []Span{{0, 10}}},
		}, "<z>0123456789"},
		{"equal lengths, same span", []Detector{
			fixed{"x", []Span{{0, 10}}}, fixed{"y", []Span{{0, 10}}},
		}, "<x>klmnopqrstuvwxyz0123456789"},
		{"touching stay apart", []Detector{
			fixed{"a", []Span{{0, 5}}}, fixed{"b", []Span{{5, 10}}},
		}, "<a><b>klmnopqrstuvwxyz0123456789"},
		{"contained", []Detector{
			fixed{"a", []Span{{2, 4}, {20, 22}}}, fixed{"b", []Span{{0, 10}}},
		}, "<b>klmnopqrst<a>wxyz0123456789"},
		{"same start", []Detector{
			fixed{"a", []Span{{0, 3}}}, fixed{"b", []Span{{0, 6}}},
		}, "<b>ghijklmnopqrstuvwxyz0123456789"},
		{"none", []Detector{fixed{"a", nil}}, string(text)},
		{"interleaved", []Detector{
			fixed{"a", []Span{{0, 2}, {10, 12}}}, fixed{"b", []Span{{4, 6}, {11, 14}}},
		}, "<a>cd<b>ghij<b>opqrstuvwxyz0123456789"},
	}
	for _, c := range cases {
		if got := string(NewSet(c.ds...).Scrub(nil, text, nil)); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

// TestSetDefaults: the default set, on sentences that hold values of
// several kinds.
func TestSetDefaults(t *testing.T) {
	set := DefaultSet()
	cases := []scrubCase{
		{"13812345678@163.com", "[EMAIL]"},
		{"11010519491231002X@qq.com", "[EMAIL]"},
		{"620102199702051238", "[ID_CARD]"}, // Gansu (62) with a Luhn-valid check: not a card
		{"电话13812345678，邮箱a.b@qq.com，身份证11010519491231002X", "电话[PHONE]，邮箱[EMAIL]，身份证[ID_CARD]"},
		{"退款到6222 0200 0000 0007，IMEI:35-209900-176148-1", "退款到[BANK_CARD]，IMEI:[IMEI]"},
		{"税号91350100M000100Y43 ip 1.2.3.4 mac 00:1A:2B:3C:4D:5E", "税号[USCC] ip [IP] mac [MAC]"},
		{"订单号20261101123045，客服400-820-8820，版本1.2.3.4.5", "订单号20261101123045，客服400-820-8820，版本1.2.3.4.5"},
	}
	var buf Buffer
	for _, c := range cases {
		if got := string(set.Scrub(nil, []byte(c.in), &buf)); got != c.want {
			t.Errorf("default(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	names := DefaultNames()
	ds := set.Detectors()
	if len(names) != len(ds) {
		t.Fatalf("%d names, %d detectors", len(names), len(ds))
	}
	for i := range ds {
		if ds[i].Name() != names[i] {
			t.Errorf("detector %d is %s, want %s", i, ds[i].Name(), names[i])
		}
	}
	if _, err := LookupSet([]string{"phone", "nope"}); err == nil {
		t.Error("LookupSet accepted an unknown name")
	}
}

// TestSetBenchEqualsSequential: for the reference order (email_bench, then
// phone_bench) one merged pass gives what applying the two one after the
// other gives, as the reference policy does.
func TestSetBenchEqualsSequential(t *testing.T) {
	set := NewSet(EmailBench{}, PhoneBench{})
	r := rand.New(rand.NewPCG(3, 4))
	g := fake.New(5)
	for i := 0; i < 30000; i++ {
		s := adversarial(r)
		if i%3 == 0 {
			s = g.AnySentence().Text
		}
		checkBenchPair(t, set, s)
	}
}

func checkBenchPair(t *testing.T, set *Set, s string) {
	t.Helper()
	want := scrub(PhoneBench{}, scrub(EmailBench{}, s))
	if got := string(set.Scrub(nil, []byte(s), nil)); got != want {
		t.Fatalf("set(%q) = %q, sequential %q", s, got, want)
	}
}

func FuzzBenchPair(f *testing.F) {
	for _, s := range []string{"13812345678@163.com", "a@b.cc13800138000@c.dd", "x13812345678@163.com", "1@a.cc"} {
		f.Add(s)
	}
	set := NewSet(EmailBench{}, PhoneBench{})
	f.Fuzz(func(t *testing.T, s string) { checkBenchPair(t, set, s) })
}

// TestNoAllocations: Find and Set.Scrub allocate nothing once their buffers
// have grown.
func TestNoAllocations(t *testing.T) {
	text := []byte("电话+86 138 1234 5678，邮箱zhang＠qq.com，身份证11010519491231002X，卡6222 0200 0000 0007，" +
		"IMEI 35-209900-176148-1，税号91350100M000100Y43，ip 2408:8207:1851:a::1 和 10.0.0.1，mac 00:1A:2B:3C:4D:5E")
	buf := make([]Span, 0, 16)
	for _, in := range All() {
		d := in.New()
		if n := testing.AllocsPerRun(100, func() { buf = d.Find(buf[:0], text) }); n != 0 {
			t.Errorf("%s: %v allocations per Find", d.Name(), n)
		}
	}
	set := DefaultSet()
	var b Buffer
	out := make([]byte, 0, 1024)
	if n := testing.AllocsPerRun(100, func() { out = set.Scrub(out[:0], text, &b) }); n != 0 {
		t.Errorf("default set: %v allocations per Scrub", n)
	}
	if got := string(out); got != "电话[PHONE]，邮箱[EMAIL]，身份证[ID_CARD]，卡[BANK_CARD]，IMEI [IMEI]，税号[USCC]，ip [IP] 和 [IP]，mac [MAC]" {
		t.Errorf("default set: %q", got)
	}
}
