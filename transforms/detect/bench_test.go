package detect

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// The expectations below come from shared/bench/WORKLOAD.md ("Redaction of
// search_query") and from the regular expression it states; none is derived
// from this package's own code.

// workloadEmail is the exact pattern of WORKLOAD.md, run by Go's regexp as the
// oracle for the hand-written scanner.
var workloadEmail = regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}`)

// oraclePhone is the WORKLOAD.md rule in its plainest form: every maximal run
// of ASCII digits of length 11 matching 1[3-9][0-9]{9}.
func oraclePhone(s string) []Span {
	var out []Span
	re := regexp.MustCompile(`[0-9]+`)
	for _, m := range re.FindAllStringIndex(s, -1) {
		run := s[m[0]:m[1]]
		if len(run) == 11 && run[0] == '1' && run[1] >= '3' && run[1] <= '9' {
			out = append(out, Span{m[0], m[1]})
		}
	}
	return out
}

func oracleEmail(s string) []Span {
	var out []Span
	for _, m := range workloadEmail.FindAllStringIndex(s, -1) {
		out = append(out, Span{m[0], m[1]})
	}
	return out
}

func scrub(d Detector, s string) string {
	return string(Replace(nil, []byte(s), d.Find(nil, []byte(s)), d.Token()))
}

func TestPhoneBenchWorkloadExamples(t *testing.T) {
	cases := []struct{ in, want string }{
		{"13800138000 13900139000", "[PHONE] [PHONE]"},
		{"13800138000,13900139000", "[PHONE],[PHONE]"},
		{"+8613800138000", "+8613800138000"},
		{"+86 13800138000", "+86 [PHONE]"},
		{"138001380001", "138001380001"},
		{"12345678901", "12345678901"},
		{"联系13800138000谢谢", "联系[PHONE]谢谢"},
		{"１３８００１３８０００", "１３８００１３８０００"},
		{"", ""},
		{"13800138000/13900139000/13700137000", "[PHONE]/[PHONE]/[PHONE]"},
		{"11912345678", "11912345678"},
		{"19912345678a19912345678", "[PHONE]a[PHONE]"},
		{"400-820-1234", "400-820-1234"},
		{"\xff13800138000\xfe", "\xff[PHONE]\xfe"},
	}
	for _, c := range cases {
		if got := scrub(PhoneBench{}, c.in); got != c.want {
			t.Errorf("phone_bench(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestEmailBenchWorkloadExamples(t *testing.T) {
	cases := []struct{ in, want string }{
		{"13812345678@163.com", "[EMAIL]"},
		{"a@b.c", "a@b.c"},
		{"a@b.cc", "[EMAIL]"},
		{"x@y.com.cn", "[EMAIL]"},
		{"user@@example.com", "user@@example.com"},
		{"@example.com", "@example.com"},
		{"mail me: First.Last+tag@sub.example-mail.org!", "mail me: [EMAIL]!"},
		{"abc@def.com13800138000", "[EMAIL]13800138000"},
		{"a@b.cc@d.ee", "[EMAIL]@d.ee"},
		{"电话：13800138000，邮箱：a.b@qq.com。", "电话：13800138000，邮箱：[EMAIL]。"},
		{"ａ@qq.com", "ａ@qq.com"},
	}
	for _, c := range cases {
		if got := scrub(EmailBench{}, c.in); got != c.want {
			t.Errorf("email_bench(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// adversarial builds strings from fragments that sit on the detectors'
// boundaries: digits, '@', '.', letters, separators and multi-byte runes.
func adversarial(r *rand.Rand) string {
	frags := []string{"1", "3", "8", "0", "13800138000", "@", ".", "..", "a", "cc", "com", "-", "_", "+", "%",
		" ", "，", "中", "x@y", "qq.com", "163.com", "\xff", "Z", "9", "@@", ".c", "1234567890"}
	var b strings.Builder
	for n := r.IntN(12); n >= 0; n-- {
		b.WriteString(frags[r.IntN(len(frags))])
	}
	return b.String()
}

func TestBenchDetectorsMatchOracles(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20000; i++ {
		s := adversarial(r)
		checkEmail(t, s)
		checkPhone(t, s)
	}
}

func checkEmail(t *testing.T, s string) {
	t.Helper()
	if got, want := (EmailBench{}).Find(nil, []byte(s)), oracleEmail(s); !sameSpans(got, want) {
		t.Fatalf("email_bench(%q) = %v, regexp says %v", s, got, want)
	}
}

func checkPhone(t *testing.T, s string) {
	t.Helper()
	if got, want := (PhoneBench{}).Find(nil, []byte(s)), oraclePhone(s); !sameSpans(got, want) {
		t.Fatalf("phone_bench(%q) = %v, oracle says %v", s, got, want)
	}
}

func FuzzEmailBench(f *testing.F) {
	for _, s := range []string{"a@b.cc", "x@y.com.cn", "a@b.cc@d.ee", "..@..cc", "a@-.cc", "13800138000@163.com"} {
		f.Add(s)
	}
	f.Fuzz(checkEmail)
}

func FuzzPhoneBench(f *testing.F) {
	for _, s := range []string{"13800138000", "+8613800138000", "1380013800013900139000", "a13912345678b"} {
		f.Add(s)
	}
	f.Fuzz(checkPhone)
}

func TestFindDoesNotAllocateWithRoom(t *testing.T) {
	s := []byte("联系13800138000或a.b@qq.com谢谢")
	buf := make([]Span, 0, 8)
	for _, d := range []Detector{EmailBench{}, PhoneBench{}} {
		if n := testing.AllocsPerRun(100, func() { buf = d.Find(buf[:0], s) }); n != 0 {
			t.Errorf("%s: %v allocations per Find", d.Name(), n)
		}
	}
}

func TestLookup(t *testing.T) {
	for _, in := range All() {
		d, err := Lookup(in.Name)
		if err != nil || d.Name() != in.Name || d.Token() != in.Token {
			t.Errorf("Lookup(%q) = %v, %v", in.Name, d, err)
		}
	}
	if _, err := Lookup("nope"); err == nil || !strings.Contains(err.Error(), "phone_bench") {
		t.Errorf("Lookup(nope) error %v should list the known detectors", err)
	}
}

func sameSpans(a, b []Span) bool {
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

func BenchmarkDetectors(b *testing.B) {
	texts := [][]byte{
		[]byte("华为 mate60 pro 手机壳 新款"),
		[]byte("联系13800138000谢谢，邮箱 zhang.wei@qq.com"),
		[]byte("订单号 202611230001234 价格 129.90"),
	}
	for _, d := range []Detector{EmailBench{}, PhoneBench{}} {
		b.Run(d.Name(), func(b *testing.B) {
			buf := make([]Span, 0, 8)
			var n int
			for _, t := range texts {
				n += len(t)
			}
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				for _, t := range texts {
					buf = d.Find(buf[:0], t)
				}
			}
		})
	}
}
