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
	for _, s := range []string{"", "\xff", "\xef\xbc", "１", "＋８６", "@", ":", "::", ".", "-", "IMEI", "\xef\xbc\x90\xbc",
		// more groups than any grouping has (a resident ID once indexed past them)
		"110101 1 2 3 4 5", "110101 1984 1104 8310 1 2", "6222 0212 3456 7890 1 2 3", "35 1 2 3 4 5 6",
		"9144 1 2 3 4 5 6", "138 1 2 3 4 5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := []byte(s)
		spans := d.Find(nil, b)
		checkSpans(t, d, b, spans)
		checkGrouped(t, d, b, spans)
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

// checkGrouped checks the grouping rules on a validating detector's spans:
// no span holds a line break or a tab, the group separators in a span are
// all the same (after a phone number's country code), and the span with its
// separators removed still validates: it is the value without grouping.
func checkGrouped(t *testing.T, d Detector, s []byte, spans []Span) {
	t.Helper()
	valid := validator(d)
	if valid == nil {
		return
	}
	if _, ok := d.(Email); ok {
		return // e-mail addresses have dots and dashes of their own
	}
	if _, ok := d.(IP); ok {
		return
	}
	if _, ok := d.(MAC); ok {
		return
	}
	for _, sp := range spans {
		v := s[sp.Start:sp.End]
		if bytes.ContainsAny(v, "\n\r\t") {
			t.Fatalf("%s(%q): span %q crosses a line break or a tab", d.Name(), s, v)
		}
		var stripped []byte
		var kinds []byte
		for i := 0; i < len(v); {
			c, w := norm(v, i)
			if isGroupSep(c) {
				kinds = append(kinds, c)
			} else {
				stripped = append(stripped, v[i:i+w]...)
			}
			i += w
		}
		if _, ok := d.(Phone); ok && len(kinds)%2 == 1 {
			kinds = kinds[1:] // the separator after a country code: 1 or 3 in all
		}
		for _, k := range kinds {
			if k != kinds[0] {
				t.Fatalf("%s(%q): span %q mixes separators", d.Name(), s, v)
			}
		}
		if !valid(stripped) {
			t.Fatalf("%s(%q): span %q does not validate without its separators, as %q", d.Name(), s, v, stripped)
		}
	}
}

func FuzzPhone(f *testing.F) {
	fuzzDetector(f, Phone{}, append(phoneCases, groupedPhoneCases...), fake.Phone)
}
func FuzzEmail(f *testing.F) { fuzzDetector(f, Email{}, emailCases, fake.Email) }
func FuzzResidentID(f *testing.F) {
	fuzzDetector(f, ResidentID{}, append(residentIDCases, groupedResidentIDCases...), fake.ResidentID)
}
func FuzzBankCard(f *testing.F) {
	fuzzDetector(f, BankCard{}, append(bankCardCases, groupedBankCardCases...), fake.BankCard)
}
func FuzzIMEI(f *testing.F) {
	fuzzDetector(f, IMEI{}, append(imeiCases, groupedIMEICases...), fake.IMEI)
}
func FuzzUSCC(f *testing.F) {
	fuzzDetector(f, USCC{}, append(usccCases, groupedUSCCCases...), fake.USCC)
}
func FuzzIP(f *testing.F)  { fuzzDetector(f, IP{}, ipCases, fake.IP) }
func FuzzMAC(f *testing.F) { fuzzDetector(f, MAC{}, macCases, fake.MAC) }

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
