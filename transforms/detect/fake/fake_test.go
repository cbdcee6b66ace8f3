package fake

import (
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// The check-character functions against the standards' own examples.
func TestCheckCharacters(t *testing.T) {
	if c := residentIDCheck("11010519491231002"); c != 'X' { // GB 11643-1999's example 11010519491231002X
		t.Errorf("residentIDCheck = %c, want X", c)
	}
	if c := residentIDCheck("44052418800101001"); c != '4' { // GB 11643-1999's example 440524188001010014
		t.Errorf("residentIDCheck = %c, want 4", c)
	}
	if c := luhnDigit("35209900176148"); c != '1' { // IMEI 35-209900-176148-1
		t.Errorf("luhnDigit = %c, want 1", c)
	}
	if c := luhnDigit("411111111111111"); c != '1' { // Visa's test number 4111111111111111
		t.Errorf("luhnDigit = %c, want 1", c)
	}
	// Shenzhen Tencent's code 91440300708461136T, organisation code 70846113-6
	if c := usccCheck("91440300708461136"); c != 'T' {
		t.Errorf("usccCheck = %c, want T", c)
	}
	if c := orgCodeCheck("70846113"); c != '6' {
		t.Errorf("orgCodeCheck = %c, want 6", c)
	}
	if c := orgCodeCheck("M000100Y"); c != '4' { // 91350100M000100Y43, a code often quoted
		t.Errorf("orgCodeCheck = %c, want 4", c)
	}
}

func TestDeterministic(t *testing.T) {
	a, b := New(1), New(1)
	for i := 0; i < 200; i++ {
		x, y := a.AnySentence(), b.AnySentence()
		if x.Text != y.Text || fmt.Sprint(x.Planted) != fmt.Sprint(y.Planted) {
			t.Fatalf("same seed, different output: %q / %q", x.Text, y.Text)
		}
	}
	if New(1).AnySentence().Text == New(2).AnySentence().Text && New(1).Phone() == New(2).Phone() {
		t.Error("different seeds give the same output")
	}
}

func TestResidentIDBirthAndSex(t *testing.T) {
	g := New(3)
	birth := time.Date(2016, 2, 29, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 100; i++ {
		id := g.ResidentID(birth, Female)
		if len(id) != 18 || id[6:14] != "20160229" || (id[16]-'0')%2 != 0 {
			t.Fatalf("ResidentID(2016-02-29, Female) = %s", id)
		}
		if id := g.ResidentID(birth, Male); (id[16]-'0')%2 != 1 {
			t.Fatalf("ResidentID(Male) = %s", id)
		}
	}
	from, to := time.Date(2010, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2010, 1, 3, 0, 0, 0, 0, time.UTC)
	seen := map[string]bool{}
	for i := 0; i < 200; i++ {
		d := g.Date(from, to)
		if d.Before(from) || d.After(to) {
			t.Fatalf("Date out of range: %v", d)
		}
		seen[d.Format("0102")] = true
	}
	if len(seen) != 3 {
		t.Errorf("Date(1-3 Jan) gave %v, want all three days", seen)
	}
}

func TestSpellings(t *testing.T) {
	cases := []struct{ got, want string }{
		{SpellPhone("13812345678", PhonePlain), "13812345678"},
		{SpellPhone("13812345678", PhoneSpaced), "138 1234 5678"},
		{SpellPhone("13812345678", PhoneDashed), "138-1234-5678"},
		{SpellPhone("13812345678", PhonePlus86), "+8613812345678"},
		{SpellPhone("13812345678", PhonePlus86Space), "+86 13812345678"},
		{SpellPhone("13812345678", PhonePlus86Grouped), "+86 138 1234 5678"},
		{SpellPhone("13812345678", Phone0086), "0086-13812345678"},
		{SpellPhone("13812345678", Phone86), "86 13812345678"},
		{SpellPhone("13812345678", PhoneFullWidth), "１３８１２３４５６７８"},
		{SpellPhone("13812345678", PhoneFullWidthPlus86), "＋８６ １３８１２３４５６７８"},
		{SpellCard("6228480012345678903", " "), "6228 4800 1234 5678 903"},
		{SpellCard("6222020000000007", ""), "6222020000000007"},
		{SpellIMEI("352099001761481", "-", false), "35-209900-176148-1"},
		{SpellIMEI("352099001761481", " ", true), "35209900 176148 1"},
		{FullWidth("a@b.cc 1"), "ａ＠ｂ．ｃｃ\u3000１"},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

// TestValuesAreValid checks generated values by the standards' rules,
// written out here once more.
func TestValuesAreValid(t *testing.T) {
	g := New(4)
	digitsOnly := func(s string) string {
		var b strings.Builder
		for _, r := range s {
			if r >= '０' && r <= '９' {
				r -= '０' - '0'
			}
			if r >= '0' && r <= '9' {
				b.WriteRune(r)
			}
		}
		return b.String()
	}
	luhnOK := func(d string) bool { return luhnDigit(d[:len(d)-1]) == d[len(d)-1] }
	for i := 0; i < 2000; i++ {
		if id := g.ResidentID(g.adultBirth(), AnySex); residentIDCheck(id) != id[17] {
			t.Fatalf("resident id %s", id)
		}
		if c := digitsOnly(g.BankCardSpelled()); !luhnOK(c) || len(c) < 16 || len(c) > 19 {
			t.Fatalf("card %s", c)
		}
		if c := digitsOnly(g.BadBankCard()); luhnOK(c) {
			t.Fatalf("bad card %s passes Luhn", c)
		}
		if m := digitsOnly(g.IMEISpelled()); len(m) != 15 || !luhnOK(m) {
			t.Fatalf("imei %s", m)
		}
		if m := g.BadIMEI(); luhnOK(m) {
			t.Fatalf("bad imei %s passes", m)
		}
		if c := g.USCC(); usccCheck(c) != c[17] || orgCodeCheck(c[8:16]) != c[16] || strings.ContainsAny(c, "IOZSV") {
			t.Fatalf("uscc %s", c)
		}
		if c := g.BadUSCC(); usccCheck(c) == c[17] {
			t.Fatalf("bad uscc %s passes", c)
		}
		if id := g.BadResidentID(); residentIDCheck(id) == id[17] {
			t.Fatalf("bad resident id %s passes", id)
		}
		if p := digitsOnly(g.PhoneSpelled()); !strings.HasPrefix(p[len(p)-11:], "1") || p[len(p)-10] < '3' {
			t.Fatalf("phone %s", p)
		}
		if n := g.NonMobile(); len(n) != 11 || (n[0] == '1' && n[1] >= '3') {
			t.Fatalf("non-mobile %s", n)
		}
		if e := g.Email(); strings.Count(e, "@")+strings.Count(e, "＠") != 1 {
			t.Fatalf("email %s", e)
		}
	}
}

// TestSentences: every kind has templates, planted spans hold what they
// say, texts are valid UTF-8.
func TestSentences(t *testing.T) {
	g := New(5)
	for _, k := range append(append(PersonalKinds(), LookAlikeKinds()...), Name, Address) {
		for i := 0; i < 50; i++ {
			s, err := g.Sentence(k)
			if err != nil {
				t.Fatal(err)
			}
			if !utf8.ValidString(s.Text) || len(s.Values(k)) == 0 {
				t.Fatalf("%s: %q planted %v", k, s.Text, s.Planted)
			}
			prev := 0
			for _, p := range s.Planted {
				if p.Start < prev || p.End <= p.Start || p.End > len(s.Text) {
					t.Fatalf("%s: %q: bad span %v", k, s.Text, p)
				}
				prev = p.End
			}
		}
	}
	if _, err := g.Sentence("nope"); err == nil {
		t.Error("Sentence(nope) succeeded")
	}
	if _, err := g.Fill("电话{nope}"); err == nil {
		t.Error("Fill with an unknown slot succeeded")
	}
	s, err := g.Fill("电话{phone}，{name}收")
	if err != nil || len(s.Planted) != 2 || !strings.HasPrefix(s.Text, "电话") {
		t.Fatalf("Fill: %v %v", s, err)
	}
	for _, k := range LookAlikeKinds() {
		if !k.LookAlike() {
			t.Errorf("%s is a look-alike kind", k)
		}
	}
	if Phone.LookAlike() {
		t.Error("phone is not a look-alike")
	}
}

func ExampleGen_Sentence() {
	g := New(42)
	s, _ := g.Sentence(Phone)
	fmt.Println(s.Text)
	for _, p := range s.Planted {
		fmt.Printf("%s %q\n", p.Kind, s.Text[p.Start:p.End])
	}
	// Output:
	// 到了打我电话18479106151，不在家放门卫
	// phone "18479106151"
}

func ExampleGen_ResidentID() {
	g := New(42)
	child := g.Date(time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2018, 12, 31, 0, 0, 0, 0, time.UTC))
	fmt.Println(g.ResidentID(child, Female))
	// Output: 460106201506232467
}
