package detect

import (
	"net/netip"
	"strings"
	"testing"
	"unicode/utf8"
)

// The expectations below come from the standards the detectors implement
// and from the task's rules on spellings and boundaries. Check characters
// were computed outside this package (by hand and with an independent
// script) or are the standards' own examples: 11010519491231002X and
// 440524188001010014 are GB 11643-1999's, 35-209900-176148-1 and
// 490154203237518 are the IMEI examples of 3GPP TS 23.003's Luhn annex as
// Wikipedia reproduces them, the IPv6 forms are RFC 4291's and RFC 5952's,
// the card numbers are the networks' published test numbers.

type scrubCase struct{ in, want string }

func checkScrub(t *testing.T, d Detector, cases []scrubCase) {
	t.Helper()
	for _, c := range cases {
		spans := d.Find(nil, []byte(c.in))
		checkSpans(t, d, []byte(c.in), spans)
		if got := string(Replace(nil, []byte(c.in), spans, d.Token())); got != c.want {
			t.Errorf("%s(%q) = %q, want %q", d.Name(), c.in, got, c.want)
		}
	}
}

var phoneCases = []scrubCase{
	{"电话13812345678谢谢", "电话[PHONE]谢谢"},
	{"13812345678", "[PHONE]"},
	{"138 1234 5678", "[PHONE]"},
	{"138-1234-5678", "[PHONE]"},
	{"麻烦放快递柜，电话138 1234 5678，谢谢", "麻烦放快递柜，电话[PHONE]，谢谢"},
	{"+8613812345678", "[PHONE]"},
	{"+86 13812345678", "[PHONE]"},
	{"+86-138-1234-5678", "[PHONE]"},
	{"+86 138 1234 5678", "[PHONE]"},
	{"0086 13812345678", "[PHONE]"},
	{"008613812345678", "[PHONE]"},
	{"86-13812345678", "[PHONE]"},
	{"8613812345678", "[PHONE]"},
	{"１３８１２３４５６７８", "[PHONE]"},
	{"联系：１３８１２３４５６７８。", "联系：[PHONE]。"},
	{"＋８６　１３８　１２３４　５６７８", "[PHONE]"},
	{"１３８－１２３４－５６７８", "[PHONE]"},
	{"tel:13812345678", "tel:[PHONE]"},
	{"13812345678 13912345678", "[PHONE] [PHONE]"},
	{"13812345678,13912345678/19912345678", "[PHONE],[PHONE]/[PHONE]"},
	{"13812345678.", "[PHONE]."},
	{"13812345678@163.com", "[PHONE]@163.com"},
	{"\xff13812345678\xfe", "\xff[PHONE]\xfe"},
	{"14512345678 16612345678 17412345678 19212345678", "[PHONE] [PHONE] [PHONE] [PHONE]"},
	// not phone numbers
	{"138-1234 5678", "138-1234 5678"},                     // mixed separators
	{"订单号20261101138123456780", "订单号20261101138123456780"}, // inside a longer number
	{"138123456789", "138123456789"},
	{"1381234567", "1381234567"},
	{"12345678901", "12345678901"},
	{"10086123456", "10086123456"},
	{"15412345678", "15412345678"}, // 154 is not assigned
	{"19412345678", "19412345678"},
	{"16012345678", "16012345678"},
	{"A13812345678", "A13812345678"},
	{"13812345678a", "13812345678a"},
	{"Ａ13812345678", "Ａ13812345678"},
	{"400-820-8820", "400-820-8820"},
	{"95588", "95588"},
	{"010-62345678", "010-62345678"},
	{"2.13812345678", "2.13812345678"},
	{"13812345678.5", "13812345678.5"},
	{"13812345678-1", "13812345678-1"},
	{"1-13812345678", "1-13812345678"},
	{"138 1234 5678 9", "138 1234 5678 9"},
	{"1 138 1234 5678", "1 138 1234 5678"},
	{"+4413812345678", "+4413812345678"},
	{"+86 1381234567", "+86 1381234567"},
	{"86 12345678901", "86 12345678901"},
	{"", ""},
}

func TestPhone(t *testing.T) { checkScrub(t, Phone{}, phoneCases) }

var emailCases = []scrubCase{
	{"zhang.san@qq.com", "[EMAIL]"},
	{"邮箱是zhang@qq.com谢谢", "邮箱是[EMAIL]谢谢"},
	{"zhang＠qq.com", "[EMAIL]"},
	{"ｚｈａｎｇ＠ｑｑ．ｃｏｍ", "[EMAIL]"},
	{"josé@example.com", "[EMAIL]"},
	{"联系:müller@example.de", "联系:[EMAIL]"},
	{"пример@пример.рф или a@b.cc", "пример@пример.рф или [EMAIL]"},
	{"a@b.cc", "[EMAIL]"},
	{"First.Last+tag@sub.example-mail.org!", "[EMAIL]!"},
	{"x@y.com.cn。", "[EMAIL]。"},
	{"...a@b.com", "...[EMAIL]"},
	{"a@qq.com13812345678", "[EMAIL]13812345678"},
	{"13812345678@163.com", "[EMAIL]"},
	{"a@b.cc@d.ee", "[EMAIL]@d.ee"},
	{"a@xn--fiqs8s.com", "[EMAIL]"},
	{"a@b.cc,c@d.ee", "[EMAIL],[EMAIL]"},
	// not e-mail addresses
	{"a@b.c", "a@b.c"},
	{"user@@example.com", "user@@example.com"},
	{"@example.com", "@example.com"},
	{"a@-b.com", "a@-b.com"},
	{"a@b-.com", "a@b-.com"},
	{"a@.com", "a@.com"},
	{"a@b..com", "a@b..com"},
	{"价格@10元", "价格@10元"},
	{"张三@qq.com", "张三@qq.com"}, // Han local parts are not taken: Chinese text has no spaces
	{"a@b.1com", "a@b.1com"},
	{"", ""},
}

func TestEmail(t *testing.T) { checkScrub(t, Email{}, emailCases) }

var residentIDCases = []scrubCase{
	{"身份证11010519491231002X", "身份证[ID_CARD]"},
	{"11010519491231002x", "[ID_CARD]"},
	{"11010120000229123X", "[ID_CARD]"}, // 2000 is a leap year
	{"１１０１０５１９４９１２３１００２Ｘ", "[ID_CARD]"},
	{"身份证号：11010120000229123X，", "身份证号：[ID_CARD]，"},
	// not resident identity numbers
	{"110105194912310021", "110105194912310021"},   // wrong check character
	{"440524188001010014", "440524188001010014"},   // GB 11643's example, born 1880: before 1900
	{"110101190002291233", "110101190002291233"},   // 1900 is not a leap year
	{"990105194912310023", "990105194912310023"},   // no province 99
	{"110105210101011234", "110105210101011234"},   // born 2101
	{"110105189912311237", "110105189912311237"},   // born 1899
	{"110105194913011232", "110105194913011232"},   // month 13
	{"11010519491231002X5", "11010519491231002X5"}, // longer
	{"A11010519491231002X", "A11010519491231002X"},
	{"911010519491231002X", "911010519491231002X"},
	{"11010519491231002", "11010519491231002"},
	{"1.11010519491231002X", "1.11010519491231002X"},
}

func TestResidentID(t *testing.T) { checkScrub(t, ResidentID{}, residentIDCases) }

var bankCardCases = []scrubCase{
	{"6222020000000007", "[BANK_CARD]"},
	{"卡号6222 0200 0000 0007谢谢", "卡号[BANK_CARD]谢谢"},
	{"6222-0200-0000-0007", "[BANK_CARD]"},
	{"6228480012345678903", "[BANK_CARD]"},
	{"6228 4800 1234 5678 903", "[BANK_CARD]"},
	{"6200000000000005", "[BANK_CARD]"},
	{"6205500000000000004", "[BANK_CARD]"},
	{"4111111111111111", "[BANK_CARD]"},
	{"5555555555554444", "[BANK_CARD]"},
	{"2223003122003222", "[BANK_CARD]"},
	{"9558801234567890128", "[BANK_CARD]"},
	{"6013821234567890123", "[BANK_CARD]"},
	{"6014281234567890124", "[BANK_CARD]"},
	{"4367421234567890129", "[BANK_CARD]"},
	{"６２２２０２０００００００００７", "[BANK_CARD]"},
	// not card numbers
	{"6222020000000008", "6222020000000008"},       // Luhn
	{"6222 0200-0000 0007", "6222 0200-0000 0007"}, // mixed separators
	{"6222 0200 0000 0007 1234", "6222 0200 0000 0007 1234"},
	{"6222 020 0000 00007", "6222 020 0000 00007"},
	{"3530111333300000", "3530111333300000"},   // JCB is not accepted
	{"41111111111111113", "41111111111111113"}, // Visa has 16 or 19 digits
	{"62220200000000075", "[BANK_CARD]"},       // UnionPay 17
	{"62220200000000071", "62220200000000071"}, // Luhn
	{"X6222020000000007", "X6222020000000007"},
	{"6222020000000007.5", "6222020000000007.5"},
	{"202611011230450001", "202611011230450001"},
}

func TestBankCard(t *testing.T) { checkScrub(t, BankCard{}, bankCardCases) }

var imeiCases = []scrubCase{
	{"352099001761481", "[IMEI]"},
	{"35-209900-176148-1", "[IMEI]"},
	{"35 209900 176148 1", "[IMEI]"},
	{"35209900-176148-1", "[IMEI]"},
	{"IMEI:490154203237518", "IMEI:[IMEI]"},
	{"IMEI490154203237518", "IMEI[IMEI]"},
	{"imei=861234567890127", "imei=[IMEI]"},
	{"设备IMEI号：861234567890127。", "设备IMEI号：[IMEI]。"},
	// not IMEIs
	{"352099001761482", "352099001761482"},       // Luhn
	{"201234567890126", "201234567890126"},       // reporting body 20 is not allocated
	{"35-209900 176148-1", "35-209900 176148-1"}, // mixed separators
	{"3520990017614810", "3520990017614810"},
	{"XIMEI490154203237518", "XIMEI490154203237518"},
	{"IMEIX490154203237518", "IMEIX490154203237518"},
	{"A352099001761481", "A352099001761481"},
}

func TestIMEI(t *testing.T) { checkScrub(t, IMEI{}, imeiCases) }

var usccCases = []scrubCase{
	{"91350100M000100Y43", "[USCC]"},
	{"统一社会信用代码：91440300708461136T。", "统一社会信用代码：[USCC]。"},
	{"914403001922038216", "[USCC]"},
	{"税号91110108MA01MNU448开票", "税号[USCC]开票"},
	{"９１３５０１００Ｍ０００１００Ｙ４３", "[USCC]"},
	// not codes
	{"91350100M000100Y44", "91350100M000100Y44"}, // check character
	{"914403001922038217", "914403001922038217"}, // check character
	{"91350100m000100y43", "91350100m000100y43"}, // lowercase
	{"91350100M000100Y43X", "91350100M000100Y43X"},
	{"X91350100M000100Y43", "X91350100M000100Y43"},
	{"202611011230450001", "202611011230450001"},
}

func TestUSCC(t *testing.T) { checkScrub(t, USCC{}, usccCases) }

var ipCases = []scrubCase{
	{"1.2.3.4", "[IP]"},
	{"来自192.168.1.10的请求", "来自[IP]的请求"},
	{"IP:10.0.0.1.", "IP:[IP]."},
	{"1.2.3.4:8080", "[IP]:8080"},
	{"255.255.255.255 0.0.0.0", "[IP] [IP]"},
	{"http://1.2.3.4/x", "http://[IP]/x"},
	{"2001:db8::1", "[IP]"},
	{"2001:0db8:0000:0000:0000:0000:0000:0001", "[IP]"},
	{"2001:DB8:0:0:8:800:200C:417A", "[IP]"},
	{"FF01::101", "[IP]"},
	{"::13.1.68.3", "[IP]"},
	{"::FFFF:129.144.52.38", "[IP]"},
	{"1080::8:800:200C:417A", "[IP]"},
	{"2001:db8::", "[IP]"},
	{"[2001:db8::1]:443", "[[IP]]:443"},
	{"fe80::1%eth0", "[IP]%eth0"},
	{"地址2408:8207:1851:a::1。", "地址[IP]。"},
	{"IPv6:2408:8207:1851:a::1", "IPv6:[IP]"},
	// not addresses
	{"1.2.3.4.5", "1.2.3.4.5"},
	{"v1.2.3.4", "v1.2.3.4"},
	{"版本1.2.3.4", "版本1.2.3.4"},
	{"版本号：1.2.3.4", "版本号：1.2.3.4"},
	{"version 1.2.3.4", "version 1.2.3.4"},
	{"256.1.1.1", "256.1.1.1"},
	{"01.2.3.4", "01.2.3.4"},
	{"192.168.01.1", "192.168.01.1"},
	{"1.2.3", "1.2.3"},
	{"2026.11.01", "2026.11.01"},
	{"a1.2.3.4", "a1.2.3.4"},
	{"1.2.3.4x", "1.2.3.4x"},
	{"std::string", "std::string"},
	{"::1", "::1"},
	{"::", "::"},
	{"12:30:45", "12:30:45"},
	{"00:11:22:33:44:55", "00:11:22:33:44:55"},
	{"2001:db8:::1", "2001:db8:::1"},
	{"2001:db8::1::2", "2001:db8::1::2"},
	{"1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7:8:9"},
	{"价格129.90元", "价格129.90元"},
}

func TestIP(t *testing.T) { checkScrub(t, IP{}, ipCases) }

var macCases = []scrubCase{
	{"00:1A:2B:3C:4D:5E", "[MAC]"},
	{"00-1a-2b-3c-4d-5e", "[MAC]"},
	{"001a.2b3c.4d5e", "[MAC]"},
	{"MAC地址：00:1A:2B:3C:4D:5E，", "MAC地址：[MAC]，"},
	{"00:1A:2B:3C:4D:5E 00:1A:2B:3C:4D:5F", "[MAC] [MAC]"},
	// not addresses
	{"00:1A:2B:3C:4D", "00:1A:2B:3C:4D"},
	{"00:1A:2B:3C:4D:5E:6F", "00:1A:2B:3C:4D:5E:6F"},
	{"00:1A-2B:3C:4D:5E", "00:1A-2B:3C:4D:5E"},
	{"G0:1A:2B:3C:4D:5E", "G0:1A:2B:3C:4D:5E"},
	{"x00:1A:2B:3C:4D:5E", "x00:1A:2B:3C:4D:5E"},
	{"00:1A:2B:3C:4D:5Ez", "00:1A:2B:3C:4D:5Ez"},
	{"001a.2b3c.4d5e.6f70", "001a.2b3c.4d5e.6f70"},
	{"12:30:45", "12:30:45"},
}

func TestMAC(t *testing.T) { checkScrub(t, MAC{}, macCases) }

// TestRegistryExamples: every registered detector's documented example is
// what it does.
func TestRegistryExamples(t *testing.T) {
	for _, in := range All() {
		parts := strings.Split(in.Example, " → ")
		if len(parts) != 2 || in.Summary == "" {
			t.Errorf("%s: example %q is not \"in → out\" or the summary is empty", in.Name, in.Example)
			continue
		}
		d := in.New()
		if got := string(Replace(nil, []byte(parts[0]), d.Find(nil, []byte(parts[0])), d.Token())); got != parts[1] {
			t.Errorf("%s: example %q gives %q", in.Name, in.Example, got)
		}
	}
}

// TestValidators: the exported validators accept exactly the whole values
// their detectors match.
func TestValidators(t *testing.T) {
	cases := []struct {
		valid func([]byte) bool
		yes   []string
		no    []string
	}{
		{ValidResidentID, []string{"11010519491231002X", "11010120000229123x"}, []string{"", "110105194912310021", "440524188001010014", " 440524188001010014"}},
		{ValidBankCard, []string{"6222 0200 0000 0007", "4111111111111111"}, []string{"", "6222020000000008", "6222020000000007 "}},
		{ValidIMEI, []string{"35-209900-176148-1", "490154203237518"}, []string{"", "IMEI490154203237518", "352099001761482"}},
		{ValidUSCC, []string{"91350100M000100Y43"}, []string{"", "91350100M000100Y44"}},
		{ValidPhone, []string{"+86 138 1234 5678", "13812345678", "＋8613812345678"}, []string{"", "+", "12345678901", "13812345678 "}},
		{ValidEmail, []string{"a@b.cc", "a＠b.cc"}, []string{"", "a@b.c", "张三@qq.com", "x a@b.cc"}},
		{ValidIP, []string{"1.2.3.4", "2001:db8::1"}, []string{"", "1.2.3.4.5", "::1", "1.2.3.4:80"}},
		{ValidMAC, []string{"00:1A:2B:3C:4D:5E", "001a.2b3c.4d5e"}, []string{"", "00:1A:2B:3C:4D:5", "00.1A.2B.3C.4D.5E"}},
	}
	for _, c := range cases {
		for _, v := range c.yes {
			if !c.valid([]byte(v)) {
				t.Errorf("%q should be valid", v)
			}
		}
		for _, v := range c.no {
			if c.valid([]byte(v)) {
				t.Errorf("%q should not be valid", v)
			}
		}
	}
}

// TestIPAgainstNetip: every dotted quad and colon form that net/netip
// accepts (without a zone) is found whole, and nothing netip rejects is.
func TestIPAgainstNetip(t *testing.T) {
	vals := []string{"0.0.0.0", "1.2.3.4", "255.255.255.255", "256.0.0.1", "01.1.1.1", "1.1.1.01", "1..1.1",
		"1.1.1", "::", "::1", "1::", "1::2", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8",
		"1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6::7:8", "::ffff:1.2.3.4", "1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:7:1.2.3.4",
		"::1.2.3.4.5", "12345::1", "fffff::1", "ABCD:ef01::1", "1:2:3:4:5:6:7:8:", ":1:2:3:4:5:6:7:8",
		"::ffff:256.1.1.1", "0:0:0:0:0:0:0:1", "2001:db8::1:0:0:1"}
	for _, v := range vals {
		addr, err := netip.ParseAddr(v)
		groups := 0
		for _, g := range strings.FieldsFunc(v, func(r rune) bool { return r == ':' }) {
			if strings.Contains(g, ".") {
				groups += 2
			} else {
				groups++
			}
		}
		want := err == nil && (addr.Is4() || groups >= 2)
		spans := IP{}.Find(nil, []byte(v))
		got := len(spans) == 1 && spans[0] == Span{0, len(v)}
		if got != want {
			t.Errorf("ip(%q) = %v, want whole match %v (netip: %v)", v, spans, want, err)
		}
	}
}

// checkSpans checks the Detector contract on one result: spans in order,
// non-empty, non-overlapping, within s, on rune boundaries, and (for the
// validating detectors) each one a valid value.
func checkSpans(t *testing.T, d Detector, s []byte, spans []Span) {
	t.Helper()
	starts := runeStarts(s)
	prev := 0
	for _, sp := range spans {
		if sp.Start < prev || sp.End <= sp.Start || sp.End > len(s) {
			t.Fatalf("%s(%q): bad span %v in %v", d.Name(), s, sp, spans)
		}
		if !starts[sp.Start] || !starts[sp.End] {
			t.Fatalf("%s(%q): span %v splits a character", d.Name(), s, sp)
		}
		if v := validator(d); v != nil && !v(s[sp.Start:sp.End]) {
			t.Fatalf("%s(%q): span %v = %q does not validate", d.Name(), s, sp, s[sp.Start:sp.End])
		}
		prev = sp.End
	}
}

// runeStarts marks the positions where a character (or an invalid byte)
// begins when s is decoded from the start, and len(s).
func runeStarts(s []byte) []bool {
	m := make([]bool, len(s)+1)
	for i := 0; i < len(s); {
		m[i] = true
		_, w := utf8.DecodeRune(s[i:])
		i += w
	}
	m[len(s)] = true
	return m
}

// validator returns the validation function of a validating detector.
func validator(d Detector) func([]byte) bool {
	switch d.(type) {
	case ResidentID:
		return ValidResidentID
	case BankCard:
		return ValidBankCard
	case IMEI:
		return func(v []byte) bool { return ValidIMEI(v) }
	case USCC:
		return ValidUSCC
	case Phone:
		return ValidPhone
	case Email:
		return ValidEmail
	case IP:
		return ValidIP
	case MAC:
		return ValidMAC
	}
	return nil
}
