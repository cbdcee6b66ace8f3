package detect

import (
	"bytes"
	"testing"

	"github.com/deidproject/deid/transforms/detect/fake"
)

// Each validating detector has a fuzz target: Find never panics, its spans
// are in order, non-empty, non-overlapping, within the text and on character
// boundaries, every span re-validates with the detector's Valid function,
// and Find appends to dst without touching what dst held. The seeds are the
// detector's table cases and generated sentences of its kind.

func fuzzDetector(f *testing.F, d Detector, cases []scrubCase, kind fake.Kind) {
	for _, c := range cases {
		f.Add(c.in)
	}
	g := fake.New(7)
	for i := 0; i < 20; i++ {
		s, err := g.Sentence(kind)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(s.Text)
	}
	for _, s := range []string{"", "\xff", "\xef\xbc", "１", "＋８６", "@", ":", "::", ".", "-", "IMEI", "\xef\xbc\x90\xbc"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := []byte(s)
		spans := d.Find(nil, b)
		checkSpans(t, d, b, spans)
		prefix := []Span{{-1, -2}}
		again := d.Find(prefix, b)
		if len(again) != len(spans)+1 || again[0] != prefix[0] {
			t.Fatalf("%s(%q): Find with a non-empty dst gave %v, alone %v", d.Name(), s, again, spans)
		}
		for i := range spans {
			if again[i+1] != spans[i] {
				t.Fatalf("%s(%q): not deterministic: %v then %v", d.Name(), s, spans, again[1:])
			}
		}
	})
}

func FuzzPhone(f *testing.F)      { fuzzDetector(f, Phone{}, phoneCases, fake.Phone) }
func FuzzEmail(f *testing.F)      { fuzzDetector(f, Email{}, emailCases, fake.Email) }
func FuzzResidentID(f *testing.F) { fuzzDetector(f, ResidentID{}, residentIDCases, fake.ResidentID) }
func FuzzBankCard(f *testing.F)   { fuzzDetector(f, BankCard{}, bankCardCases, fake.BankCard) }
func FuzzIMEI(f *testing.F)       { fuzzDetector(f, IMEI{}, imeiCases, fake.IMEI) }
func FuzzUSCC(f *testing.F)       { fuzzDetector(f, USCC{}, usccCases, fake.USCC) }
func FuzzIP(f *testing.F)         { fuzzDetector(f, IP{}, ipCases, fake.IP) }
func FuzzMAC(f *testing.F)        { fuzzDetector(f, MAC{}, macCases, fake.MAC) }

// FuzzDefaultSet: the default set's merged matches are in order,
// non-overlapping and on character boundaries, each covers at least one
// detector's own match, and Scrub writes exactly the text between them.
func FuzzDefaultSet(f *testing.F) {
	g := fake.New(8)
	for i := 0; i < 40; i++ {
		f.Add(g.AnySentence().Text)
	}
	f.Add("13812345678@163.com")
	f.Add("11010519491231002X@qq.com 620102199702051238")
	set := DefaultSet()
	f.Fuzz(func(t *testing.T, s string) {
		b := []byte(s)
		var buf Buffer
		ms := set.Find(nil, b, &buf)
		starts := runeStarts(b)
		prev := 0
		var want []byte
		for _, m := range ms {
			if m.Start < prev || m.End <= m.Start || m.End > len(b) || !starts[m.Start] || !starts[m.End] {
				t.Fatalf("set(%q): bad match %v in %v", s, m, ms)
			}
			own := set.detectors[m.Detector].Find(nil, b)
			covered := false
			for _, sp := range own {
				if m.Start <= sp.Start && sp.End <= m.End {
					covered = true
				}
			}
			if !covered {
				t.Fatalf("set(%q): match %v names %s, which found nothing in it", s, m, set.detectors[m.Detector].Name())
			}
			want = append(append(want, b[prev:m.Start]...), set.Token(m)...)
			prev = m.End
		}
		want = append(want, b[prev:]...)
		if got := set.Scrub(nil, b, &buf); !bytes.Equal(got, want) {
			t.Fatalf("set.Scrub(%q) = %q, want %q", s, got, want)
		}
	})
}
