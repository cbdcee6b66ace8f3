package detect

import (
	"strings"
	"testing"
)

// Issue 15, item 8: the validating detectors accept identifiers typed in
// the groupings people use, with one separator (a space, U+3000, a dash or
// a dot, also full-width) throughout, and still validate their check
// characters. 110101198411048310 is the number of the report; its check
// character 0 was computed by hand from GB 11643's weights. The other values
// are those of detectors_test.go.

var groupedResidentIDCases = []scrubCase{
	{"身份证 110101 19841104 8310", "身份证 [ID_CARD]"}, // the report
	{"110101-19841104-8310", "[ID_CARD]"},
	{"110101.19841104.8310", "[ID_CARD]"},
	{"110101　19841104　8310", "[ID_CARD]"},
	{"110101 1984 1104 8310", "[ID_CARD]"},
	{"110101-1984-1104-8310", "[ID_CARD]"},
	{"110105 19491231 002X", "[ID_CARD]"},
	{"110105-1949-1231-002x，", "[ID_CARD]，"},
	{"１１０１０１　１９８４１１０４　８３１０", "[ID_CARD]"},
	{"１１０１０１－１９８４１１０４－８３１０", "[ID_CARD]"},
	{"110101 19841104 8310 和 110105 19491231 002X", "[ID_CARD] 和 [ID_CARD]"},
	{"身份证号：110101 19841104 8310。", "身份证号：[ID_CARD]。"},
	{"(110101 19841104 8310)", "([ID_CARD])"},
	{"110101 19841104 8310.", "[ID_CARD]."},
	{"110101 19841104 8310-", "[ID_CARD]-"},
	{"110101 19841104 8310-a", "[ID_CARD]-a"},
	{"110101 19841104 8310\n110101 19841104 8310", "[ID_CARD]\n[ID_CARD]"},
	// not resident identity numbers
	{"110101 19841104 8311", "110101 19841104 8311"},     // check character
	{"110101 1984 1104 8311", "110101 1984 1104 8311"},   // check character
	{"110101 19841304 8310", "110101 19841304 8310"},     // month 13
	{"110101 19841104-8310", "110101 19841104-8310"},     // mixed separators
	{"110101-1984 1104-8310", "110101-1984 1104-8310"},   // mixed separators
	{"110101  19841104  8310", "110101  19841104  8310"}, // two spaces
	{"110101\n19841104\n8310", "110101\n19841104\n8310"}, // split across lines
	{"110101 19841104\n8310", "110101 19841104\n8310"},
	{"110101\r\n19841104 8310", "110101\r\n19841104 8310"},
	{"110101\t19841104\t8310", "110101\t19841104\t8310"},
	{"110101/19841104/8310", "110101/19841104/8310"},
	{"110101,19841104,8310", "110101,19841104,8310"},
	{"1101011 9841104 8310", "1101011 9841104 8310"},     // other grouping
	{"110101 1984110 48310", "110101 1984110 48310"},     // other grouping
	{"110 101 1984 1104 8310", "110 101 1984 1104 8310"}, // 3-3-4-4-4 is not accepted
	{"110101 19841104 831 0", "110101 19841104 831 0"},
	{"110101 19841104 8310 5", "110101 19841104 8310 5"}, // a further group
	{"5 110101 19841104 8310", "5 110101 19841104 8310"},
	{"110101-19841104-8310-5", "110101-19841104-8310-5"},
	{"1.110101.19841104.8310", "1.110101.19841104.8310"},
	{"110101 19841104 8310x", "110101 19841104 8310x"},
	{"a110101 19841104 8310", "a110101 19841104 8310"},
	{"110101 19841104 831X", "110101 19841104 831X"}, // X is not its check character
}

var groupedBankCardCases = []scrubCase{
	{"6222.0200.0000.0007", "[BANK_CARD]"},
	{"6222　0200　0000　0007", "[BANK_CARD]"},
	{"6228-4800-1234-5678-903", "[BANK_CARD]"},
	{"6228.4800.1234.5678.903。", "[BANK_CARD]。"},
	{"６２２２　０２００　００００　０００７", "[BANK_CARD]"},
	{"4111 1111 1111 1111", "[BANK_CARD]"},
	{"卡号：6222 0200 0000 0007，户名张三", "卡号：[BANK_CARD]，户名张三"},
	{"6222020000000007 1234", "[BANK_CARD] 1234"}, // a whole number, then another
	// not card numbers
	{"6222 0200 0000 0008", "6222 0200 0000 0008"}, // Luhn
	{"6222.0200.0000.0008", "6222.0200.0000.0008"}, // Luhn
	{"6228 4800 1234 5678 904", "6228 4800 1234 5678 904"},
	{"6222.0200 0000.0007", "6222.0200 0000.0007"},
	{"6222 0200\n0000 0007", "6222 0200\n0000 0007"},
	{"6228 4800 1234 5678903", "6228 4800 1234 5678903"},
	{"6222 020000000007", "6222 020000000007"},
	{"622202 0000000007", "622202 0000000007"},
	{"6222 0200 0000 0007.5", "6222 0200 0000 0007.5"},
	{"1 6222 0200 0000 0007", "1 6222 0200 0000 0007"},
	{"2026 1104 8310 1234", "2026 1104 8310 1234"}, // an order number: no issuer
}

var groupedPhoneCases = []scrubCase{
	{"138.1234.5678", "[PHONE]"},
	{"138　1234　5678", "[PHONE]"},
	{"１３８．１２３４．５６７８", "[PHONE]"},
	{"+86 138.1234.5678", "[PHONE]"}, // the country code is no group
	{"+86-138-1234-5678", "[PHONE]"},
	{"0086 138 1234 5678", "[PHONE]"},
	{"电话 138 1234 5678，谢谢", "电话 [PHONE]，谢谢"},
	{"138 1234 5678\n139 1234 5678", "[PHONE]\n[PHONE]"},
	{"13812345678 13912345678", "[PHONE] [PHONE]"},
	// not phone numbers
	{"138.1234 5678", "138.1234 5678"},
	{"138 1234\n5678", "138 1234\n5678"},
	{"138\n1234\n5678", "138\n1234\n5678"},
	{"154 1234 5678", "154 1234 5678"}, // no mobile segment
	{"010 6234 5678", "010 6234 5678"}, // a landline
	{"1381 2345 678", "1381 2345 678"}, // 4-4-3 is not accepted
	{"138 12345 678", "138 12345 678"},
	{"2024-01-01", "2024-01-01"},
	{"2024.01.01", "2024.01.01"},
	{"2024 01 01 13:81:23", "2024 01 01 13:81:23"},
	{"¥1,381,234.56", "¥1,381,234.56"},
	{"138.12元", "138.12元"},
	{"1.138.1234.5678", "1.138.1234.5678"},
	{"138.1234.5678.9", "138.1234.5678.9"},
	{"+86.138.1234.5678", "+86.138.1234.5678"},
}

var groupedIMEICases = []scrubCase{
	{"35.209900.176148.1", "[IMEI]"},
	{"35　209900　176148　1", "[IMEI]"},
	{"35209900.176148.1", "[IMEI]"},
	{"IMEI: 35 209900 176148 1", "IMEI: [IMEI]"},
	{"IMEI35-209900-176148-1", "IMEI[IMEI]"},
	{"３５－２０９９００－１７６１４８－１", "[IMEI]"},
	// not IMEIs
	{"35.209900.176148.2", "35.209900.176148.2"}, // Luhn
	{"35 209900 176148 2", "35 209900 176148 2"}, // Luhn
	{"35-209900.176148-1", "35-209900.176148-1"},
	{"35-209900-176148\n1", "35-209900-176148\n1"},
	{"3520 9900 1761 481", "3520 9900 1761 481"}, // 4-4-4-3 is not accepted
	{"35-209900-1761481", "35-209900-1761481"},
	{"35-209900-176148-1-5", "35-209900-176148-1-5"},
}

var groupedUSCCCases = []scrubCase{
	{"91 350100 M000100Y4 3", "[USCC]"},
	{"91-350100-M000100Y4-3", "[USCC]"},
	{"9135 0100 M000 100Y 43", "[USCC]"},
	{"9144.0300.7084.6113.6T", "[USCC]"},
	{"税号：91 440300 708461136 T。", "税号：[USCC]。"},
	{"９１　３５０１００　Ｍ０００１００Ｙ４　３", "[USCC]"},
	// not codes
	{"91 350100 M000100Y4 4", "91 350100 M000100Y4 4"}, // check character
	{"9135 0100 M000 100Y 44", "9135 0100 M000 100Y 44"},
	{"91 350100-M000100Y4 3", "91 350100-M000100Y4 3"},
	{"913501 00M000 100Y43", "913501 00M000 100Y43"}, // 6-6-6 is not accepted
	{"91 350100\nM000100Y4 3", "91 350100\nM000100Y4 3"},
	{"9135 0100 m000 100y 43", "9135 0100 m000 100y 43"},
}

func TestGroupedResidentID(t *testing.T) { checkScrub(t, ResidentID{}, groupedResidentIDCases) }
func TestGroupedBankCard(t *testing.T)   { checkScrub(t, BankCard{}, groupedBankCardCases) }
func TestGroupedPhone(t *testing.T)      { checkScrub(t, Phone{}, groupedPhoneCases) }
func TestGroupedIMEI(t *testing.T)       { checkScrub(t, IMEI{}, groupedIMEICases) }
func TestGroupedUSCC(t *testing.T)       { checkScrub(t, USCC{}, groupedUSCCCases) }

// TestGroupedDefaultSet: the report's text through the default set, which
// scrub uses without a detectors list.
func TestGroupedDefaultSet(t *testing.T) {
	set := DefaultSet()
	var buf Buffer
	cases := []scrubCase{
		{"身份证 110101 19841104 8310", "身份证 [ID_CARD]"},
		{"卡号 6222 0200 0000 0007，电话 138-1234-5678，IMEI 35 209900 176148 1", "卡号 [BANK_CARD]，电话 [PHONE]，IMEI [IMEI]"},
		{"税号 9135 0100 M000 100Y 43 开票", "税号 [USCC] 开票"},
		{"下单时间 2024-01-01 12:30，金额 1,380.00 元，订单 2026 1104 8310 1234", "下单时间 2024-01-01 12:30，金额 1,380.00 元，订单 2026 1104 8310 1234"},
	}
	for _, c := range cases {
		if got := string(set.Scrub(nil, []byte(c.in), &buf)); got != c.want {
			t.Errorf("default set(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestGroupedEdges: empty and odd inputs, and long ones, on every
// validating detector.
func TestGroupedEdges(t *testing.T) {
	long := strings.Repeat("1 ", 1<<16) + "110101 19841104 8310"
	sep := strings.Repeat("6222 ", 1<<14)
	for _, in := range All() {
		d := in.New()
		if validator(d) == nil {
			continue
		}
		for _, s := range []string{"", " ", "-", ".", "　", "\xff", "\xff 110101", "110101 \xff", "1 2 3 4 5 6 7 8 9",
			"110101 19841104 8310"[:17] + "\xef\xbc", "6222 0200 0000 000\xef\xbc\x97", long, sep, strings.Repeat("9", 1<<16),
			strings.Repeat("-1", 1<<15), strings.Repeat("1.", 1<<15)} {
			checkSpans(t, d, []byte(s), d.Find(nil, []byte(s)))
		}
	}
	// after a digit and a space the groups continue a longer number
	if got := scrub(ResidentID{}, long); got != long {
		t.Errorf("resident_id on a long text: …%q", got[len(got)-40:])
	}
	if got := scrub(ResidentID{}, strings.Repeat("中", 1<<16)+"110101 19841104 8310"); !strings.HasSuffix(got, "中[ID_CARD]") {
		t.Errorf("resident_id after 64 Ki Chinese characters: %.40q…", got[len(got)-40:])
	}
}

// TestFindDoesNotAllocate: no validating detector allocates when dst has
// room, on text without personal data and on grouped values.
func TestFindDoesNotAllocate(t *testing.T) {
	texts := [][]byte{
		[]byte("华为 mate60 pro 手机壳 新款 2024-01-01 ¥129.90"),
		[]byte("身份证 110101 19841104 8310 卡号 6222 0200 0000 0007 电话 138.1234.5678"),
		[]byte("IMEI 35-209900-176148-1 税号 91 350100 M000100Y4 3"),
	}
	buf := make([]Span, 0, 16)
	for _, in := range All() {
		d := in.New()
		for _, s := range texts {
			if n := testing.AllocsPerRun(100, func() { buf = d.Find(buf[:0], s) }); n != 0 {
				t.Errorf("%s(%q): %v allocations per Find", d.Name(), s, n)
			}
		}
	}
}

// BenchmarkFindGrouped is BenchmarkFind on values typed in groups, half of
// them valid, and ordinary grouped numbers (dates, prices, order numbers).
func BenchmarkFindGrouped(b *testing.B) {
	var texts [][]byte
	for _, cs := range [][]scrubCase{groupedResidentIDCases, groupedBankCardCases, groupedPhoneCases, groupedIMEICases, groupedUSCCCases} {
		for _, c := range cs {
			texts = append(texts, []byte(c.in))
		}
	}
	n := 0
	for _, t := range texts {
		n += len(t)
	}
	for _, in := range All() {
		d := in.New()
		if validator(d) == nil {
			continue
		}
		b.Run(in.Name, func(b *testing.B) {
			buf := make([]Span, 0, 16)
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				for _, t := range texts {
					buf = d.Find(buf[:0], t)
				}
			}
		})
	}
}

// ungroupedTexts are the values of benchTexts that hold no digit groups:
// no digit followed by a separator and another digit.
func ungroupedTexts() [][]byte {
	var out [][]byte
	for _, t := range benchTexts() {
		grouped := false
		for i := 0; i < len(t) && !grouped; {
			c, w := norm(t, i)
			if isDigit(c) {
				if s, sw := norm(t, i+w); isGroupSep(s) {
					if d, _ := norm(t, i+w+sw); isDigit(d) {
						grouped = true
					}
				}
			}
			i += w
		}
		if !grouped {
			out = append(out, t)
		}
	}
	return out
}

// BenchmarkFindUngrouped is BenchmarkFind on the values of benchTexts
// without digit groups: the cost of the groupings on text that has none.
func BenchmarkFindUngrouped(b *testing.B) {
	texts := ungroupedTexts()
	n := 0
	for _, t := range texts {
		n += len(t)
	}
	for _, in := range All() {
		d := in.New()
		if validator(d) == nil {
			continue
		}
		b.Run(in.Name, func(b *testing.B) {
			buf := make([]Span, 0, 16)
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				for _, t := range texts {
					buf = d.Find(buf[:0], t)
				}
			}
		})
	}
	b.Run("default_set", func(b *testing.B) {
		set := DefaultSet()
		var buf Buffer
		out := make([]byte, 0, 1024)
		b.SetBytes(int64(n))
		b.ReportAllocs()
		for b.Loop() {
			for _, t := range texts {
				out = set.Scrub(out[:0], t, &buf)
			}
		}
	})
}
