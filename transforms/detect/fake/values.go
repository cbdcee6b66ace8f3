package fake

import (
	"fmt"
	"strings"
	"time"
)

// ---- check characters, implemented here from the standards ----

// luhnDigit returns the Luhn check digit (ISO/IEC 7812-1) for the digits
// body.
func luhnDigit(body string) byte {
	sum := 0
	for i := 0; i < len(body); i++ {
		v := int(body[len(body)-1-i] - '0')
		if i%2 == 0 { // doubled: the check digit will be appended to the right
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	return byte('0' + (10-sum%10)%10)
}

// residentIDCheck returns the ISO 7064 MOD 11-2 check character of GB 11643
// for the first 17 digits.
func residentIDCheck(body string) byte {
	sum := 0
	for i := 0; i < 17; i++ {
		w := 1
		for k := 0; k < 17-i; k++ { // 2^(17-i) mod 11: the weight of position i+1 of 18
			w = w * 2 % 11
		}
		sum += int(body[i]-'0') * w
	}
	return "10X98765432"[sum%11]
}

// usccCharset is GB 32100's charset: the digits and the capital letters
// other than I, O, Z, S, V, valued 0-30 in this order.
const usccCharset = "0123456789ABCDEFGHJKLMNPQRTUWXY"

// usccCheck returns GB 32100's check character for the first 17 characters:
// weights 3^(i-1) mod 31, check value 31 - (sum mod 31), 31 read as 0.
func usccCheck(body string) byte {
	sum, w := 0, 1
	for i := 0; i < 17; i++ {
		sum += strings.IndexByte(usccCharset, body[i]) * w
		w = w * 3 % 31
	}
	return usccCharset[(31-sum%31)%31]
}

// orgCodeCheck returns GB 11714's check character for an 8-character
// organisation code body: weights 3 7 9 10 5 8 4 2, letters A=10 .. Z=35,
// check 11 - (sum mod 11), 10 written X and 11 written 0.
func orgCodeCheck(body string) byte {
	weights := [8]int{3, 7, 9, 10, 5, 8, 4, 2}
	sum := 0
	for i, w := range weights {
		c := body[i]
		v := int(c - '0')
		if c >= 'A' {
			v = int(c-'A') + 10
		}
		sum += v * w
	}
	switch r := 11 - sum%11; r {
	case 10:
		return 'X'
	case 11:
		return '0'
	default:
		return byte('0' + r)
	}
}

// ---- resident identity numbers ----

// Sex selects the sex a resident identity number encodes in its 17th digit
// (odd for men, even for women).
type Sex int

// Sexes.
const (
	AnySex Sex = iota
	Male
	Female
)

// Date returns a day chosen uniformly between from and to (inclusive), at
// midnight UTC. Use it for birth dates: Date(2010-01-01, 2020-12-31) for
// children.
func (g *Gen) Date(from, to time.Time) time.Time {
	a := time.Date(from.Year(), from.Month(), from.Day(), 0, 0, 0, 0, time.UTC)
	b := time.Date(to.Year(), to.Month(), to.Day(), 0, 0, 0, 0, time.UTC)
	days := int(b.Sub(a).Hours()/24) + 1
	if days < 1 {
		days = 1
	}
	return a.AddDate(0, 0, g.r.IntN(days))
}

// ResidentID returns a valid 18-character resident identity number of a
// person born on birth (its year, month and day are used as they are) with
// the given sex, registered in a real county-level division.
func (g *Gen) ResidentID(birth time.Time, sex Sex) string {
	seq := g.r.IntN(1000)
	switch sex {
	case Male:
		seq |= 1
	case Female:
		seq &^= 1
	}
	body := fmt.Sprintf("%s%04d%02d%02d%03d", pick(g, divisions).code, birth.Year(), int(birth.Month()), birth.Day(), seq)
	return body + string(residentIDCheck(body))
}

// adultBirth returns a birth date between 1940 and 2008.
func (g *Gen) adultBirth() time.Time {
	return g.Date(time.Date(1940, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2008, 12, 31, 0, 0, 0, 0, time.UTC))
}

// ResidentIDSpelled returns a resident identity number of a person born
// 1940-2020, now and then with a lowercase x or in full-width digits.
func (g *Gen) ResidentIDSpelled() string {
	birth := g.adultBirth()
	if g.chance(0.2) {
		birth = g.Date(time.Date(2009, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2020, 12, 31, 0, 0, 0, 0, time.UTC))
	}
	id := g.ResidentID(birth, AnySex)
	switch {
	case g.chance(0.05):
		return FullWidth(id)
	case g.chance(0.3):
		return strings.ToLower(id)
	}
	return id
}

// BadResidentID returns a resident identity number with a wrong check
// character.
func (g *Gen) BadResidentID() string {
	id := g.ResidentID(g.adultBirth(), AnySex)
	good := id[17]
	for {
		c := "0123456789X"[g.r.IntN(11)]
		if c != good {
			return id[:17] + string(c)
		}
	}
}

// ---- phone numbers ----

// mobilePrefixes are assigned mainland mobile segments.
var mobilePrefixes = []string{"130", "131", "132", "133", "134", "135", "136", "137", "138", "139", "145", "147",
	"149", "150", "151", "152", "153", "155", "156", "157", "158", "159", "162", "165", "166", "167", "170", "171",
	"172", "173", "175", "176", "177", "178", "180", "181", "182", "183", "184", "185", "186", "187", "188", "189",
	"190", "191", "192", "193", "195", "196", "197", "198", "199"}

// Phone returns a mainland mobile number of 11 digits on an assigned
// segment.
func (g *Gen) Phone() string { return pick(g, mobilePrefixes) + g.digits(8) }

// PhoneStyle is a way of writing a mobile number.
type PhoneStyle int

// Phone spellings.
const (
	PhonePlain           PhoneStyle = iota // 13812345678
	PhoneSpaced                            // 138 1234 5678
	PhoneDashed                            // 138-1234-5678
	PhonePlus86                            // +8613812345678
	PhonePlus86Space                       // +86 13812345678
	PhonePlus86Grouped                     // +86 138 1234 5678
	Phone0086                              // 0086-13812345678
	Phone86                                // 86 13812345678
	PhoneFullWidth                         // １３８１２３４５６７８
	PhoneFullWidthPlus86                   // ＋８６ １３８１２３４５６７８
	phoneStyles
)

// SpellPhone writes the 11-digit number n in style st.
func SpellPhone(n string, st PhoneStyle) string {
	grouped := func(sep string) string { return n[:3] + sep + n[3:7] + sep + n[7:] }
	switch st {
	case PhoneSpaced:
		return grouped(" ")
	case PhoneDashed:
		return grouped("-")
	case PhonePlus86:
		return "+86" + n
	case PhonePlus86Space:
		return "+86 " + n
	case PhonePlus86Grouped:
		return "+86 " + grouped(" ")
	case Phone0086:
		return "0086-" + n
	case Phone86:
		return "86 " + n
	case PhoneFullWidth:
		return FullWidth(n)
	case PhoneFullWidthPlus86:
		return FullWidth("+86") + " " + FullWidth(n)
	}
	return n
}

// PhoneSpelled returns a fresh mobile number in a random spelling, plain
// most often.
func (g *Gen) PhoneSpelled() string {
	st := PhonePlain
	if g.chance(0.6) {
		st = PhoneStyle(g.r.IntN(int(phoneStyles)))
	}
	return SpellPhone(g.Phone(), st)
}

// NonMobile returns 11 digits that are no mobile number: they begin with 10,
// 11, 12 or a digit other than 1.
func (g *Gen) NonMobile() string {
	if g.chance(0.5) {
		return "1" + string(byte('0'+g.r.IntN(3))) + g.digits(9)
	}
	return string(byte('2'+g.r.IntN(8))) + g.digits(10)
}

// Hotline returns a service number: 400 and 800 numbers, five-digit bank
// and carrier numbers, landlines with area codes.
func (g *Gen) Hotline() string {
	switch g.r.IntN(6) {
	case 0:
		return pick(g, []string{"400", "800"}) + "-" + g.digits(3) + "-" + g.digits(4)
	case 1:
		return pick(g, []string{"400", "800"}) + g.digits(7)
	case 2:
		return pick(g, []string{"95588", "95599", "95533", "95566", "95555", "10086", "10010", "10000", "12315", "12345", "95338", "95311"})
	case 3:
		return pick(g, []string{"010", "021", "022", "023", "020", "0755", "0571", "028"}) + "-" + string(byte('2'+g.r.IntN(7))) + g.digits(7)
	case 4:
		return "(" + pick(g, []string{"010", "021", "0755"}) + ")" + string(byte('2'+g.r.IntN(7))) + g.digits(7)
	}
	return pick(g, []string{"400", "800"}) + " " + g.digits(3) + " " + g.digits(4)
}

// ---- bank cards ----

// cardBINs are issuer prefixes with their card lengths: UnionPay debit and
// credit BINs of Chinese banks (ICBC 622202, ABC 622848, CCB 621700, BOC
// 621661, CMB 622588, BoCom 622260, ...), Visa, Mastercard, and the
// pre-UnionPay debit BINs ICBC 9558, BOC 601382, BoCom 601428, CCB 436742.
var cardBINs = []struct {
	prefix string
	length int
}{
	{"622202", 19}, {"622848", 19}, {"621700", 19}, {"621661", 19}, {"622588", 16}, {"622260", 19},
	{"621483", 16}, {"622575", 16}, {"625965", 16}, {"622155", 16}, {"623058", 19}, {"621226", 19},
	{"4", 16}, {"4", 16}, {"5", 16}, {"2", 16}, {"955880", 19}, {"601382", 19}, {"601428", 19}, {"436742", 19},
}

// BankCard returns a card number with a real issuer prefix, its length and
// a valid Luhn digit.
func (g *Gen) BankCard() string {
	bin := pick(g, cardBINs)
	p := bin.prefix
	switch p {
	case "4":
		p = "4" + g.digits(5)
	case "5":
		p = fmt.Sprintf("5%d", 1+g.r.IntN(5)) + g.digits(4)
	case "2":
		p = fmt.Sprint(2221+g.r.IntN(500)) + g.digits(2)
	}
	body := p + g.digits(bin.length-1-len(p))
	return body + string(luhnDigit(body))
}

// SpellCard writes a card number plain (sep "") or in groups of four
// separated by sep.
func SpellCard(n, sep string) string {
	if sep == "" {
		return n
	}
	var b strings.Builder
	for i := 0; i < len(n); i += 4 {
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(n[i:min(i+4, len(n))])
	}
	return b.String()
}

// BankCardSpelled returns a fresh card number, plain or grouped.
func (g *Gen) BankCardSpelled() string {
	return SpellCard(g.BankCard(), pick(g, []string{"", "", " ", "-"}))
}

// BadBankCard returns a card number with a real prefix and length but a
// wrong Luhn digit.
func (g *Gen) BadBankCard() string {
	n := g.BankCard()
	last := n[len(n)-1]
	d := byte('0' + (int(last-'0')+1+g.r.IntN(9))%10)
	return SpellCard(n[:len(n)-1]+string(d), pick(g, []string{"", "", " "}))
}

// ---- IMEIs ----

// IMEI returns a 15-digit IMEI with a reporting body identifier in use (86
// for China's TAF, 35 for BABT, 01 for PTCRB, 99) and a valid Luhn digit.
func (g *Gen) IMEI() string {
	body := pick(g, []string{"86", "86", "35", "35", "01", "99"}) + g.digits(12)
	return body + string(luhnDigit(body))
}

// SpellIMEI writes an IMEI plain (sep "") or as printed: 2-6-6-1 with sep,
// or 8-6-1 when tacFirst is true.
func SpellIMEI(n, sep string, tacFirst bool) string {
	if sep == "" {
		return n
	}
	if tacFirst {
		return n[:8] + sep + n[8:14] + sep + n[14:]
	}
	return n[:2] + sep + n[2:8] + sep + n[8:14] + sep + n[14:]
}

// IMEISpelled returns a fresh IMEI, mostly plain, sometimes printed in
// groups.
func (g *Gen) IMEISpelled() string {
	n := g.IMEI()
	if g.chance(0.7) {
		return n
	}
	return SpellIMEI(n, pick(g, []string{"-", " "}), g.chance(0.3))
}

// BadIMEI returns an IMEI with a wrong Luhn digit.
func (g *Gen) BadIMEI() string {
	n := g.IMEI()
	d := byte('0' + (int(n[14]-'0')+1+g.r.IntN(9))%10)
	return n[:14] + string(d)
}

// ---- unified social credit codes ----

// usccKinds are registration authority and category pairs in use: 91
// enterprise, 92 individual business, 93 farmers' cooperative, 11 and 12
// government bodies and institutions, 51-53 social organisations, Y1 other.
var usccKinds = []string{"91", "91", "91", "92", "92", "93", "11", "12", "51", "52", "53", "Y1"}

// USCC returns a valid unified social credit code: a real division code, an
// organisation code with its GB 11714 check character (newer codes begin
// with MA) and the GB 32100 check character.
func (g *Gen) USCC() string {
	var org string
	if g.chance(0.4) {
		org = "MA" + g.usccChars(6)
	} else {
		org = g.digits(8)
	}
	org += string(orgCodeCheck(org))
	body := pick(g, usccKinds) + pick(g, divisions).code + org
	return body + string(usccCheck(body))
}

// usccChars returns n characters of the charset, digits more often.
func (g *Gen) usccChars(n int) string {
	b := make([]byte, n)
	for i := range b {
		if g.chance(0.6) {
			b[i] = byte('0' + g.r.IntN(10))
		} else {
			b[i] = usccCharset[10+g.r.IntN(len(usccCharset)-10)]
		}
	}
	return string(b)
}

// BadUSCC returns a unified social credit code with a wrong check
// character.
func (g *Gen) BadUSCC() string {
	c := g.USCC()
	for {
		x := usccCharset[g.r.IntN(len(usccCharset))]
		if x != c[17] {
			return c[:17] + string(x)
		}
	}
}

// ---- e-mail addresses ----

var (
	emailDomains = []string{"qq.com", "qq.com", "163.com", "126.com", "sina.com", "sohu.com", "foxmail.com",
		"gmail.com", "outlook.com", "hotmail.com", "yeah.net", "139.com", "aliyun.com", "example.com.cn",
		"mail.example.edu.cn", "corp-mail.example.cn"}
	pinyin = []string{"zhang", "wang", "li", "liu", "chen", "yang", "huang", "zhao", "wu", "zhou", "xu", "sun",
		"wei", "fang", "na", "min", "jing", "li", "qiang", "lei", "jun", "yang", "yong", "yan", "jie", "tao", "ming",
		"chao", "xia", "ping", "gang", "hui", "xin", "yu", "hao", "yi", "ting"}
	intlLocals = []string{"josé", "müller", "françois", "søren", "zoë", "андрей", "δημήτρης", "ångström"}
)

// Email returns an e-mail address: pinyin names, QQ numbers and phone
// numbers as local parts, Chinese and international providers, now and then
// a non-ASCII local part or the full-width at sign ＠.
func (g *Gen) Email() string {
	var local string
	switch g.r.IntN(8) {
	case 0:
		local = fmt.Sprint(10000 + g.r.IntN(3000000000)) // QQ number
	case 1:
		local = g.Phone()
	case 2:
		local = pick(g, pinyin) + "." + pick(g, pinyin)
	case 3:
		local = pick(g, pinyin) + pick(g, pinyin) + fmt.Sprint(g.r.IntN(10000))
	case 4:
		local = pick(g, pinyin) + "_" + pick(g, pinyin)
	case 5:
		local = pick(g, intlLocals)
	case 6:
		local = pick(g, pinyin) + pick(g, pinyin) + "+shop"
	default:
		local = pick(g, pinyin) + pick(g, pinyin)
	}
	at := "@"
	if g.chance(0.1) {
		at = "＠"
	}
	return local + at + pick(g, emailDomains)
}

// ---- network addresses ----

// IPv4 returns an IPv4 address, public or private.
func (g *Gen) IPv4() string {
	switch g.r.IntN(4) {
	case 0:
		return fmt.Sprintf("192.168.%d.%d", g.r.IntN(256), 1+g.r.IntN(254))
	case 1:
		return fmt.Sprintf("10.%d.%d.%d", g.r.IntN(256), g.r.IntN(256), 1+g.r.IntN(254))
	}
	return fmt.Sprintf("%d.%d.%d.%d", 1+g.r.IntN(223), g.r.IntN(256), g.r.IntN(256), g.r.IntN(256))
}

// IPv6 returns an IPv6 address in one of RFC 4291's text forms:
// compressed, full, uppercase, with an embedded IPv4 address.
func (g *Gen) IPv6() string {
	h := func() string { return fmt.Sprintf("%x", g.r.IntN(65536)) }
	prefix := pick(g, []string{"2408:8207", "240e:3a1", "2409:8a00", "2001:db8", "fe80:0"})
	switch g.r.IntN(5) {
	case 0:
		return fmt.Sprintf("%s:%s:%s::%s", prefix, h(), h(), h())
	case 1:
		return fmt.Sprintf("%04x:%04x:%04x:%04x:%04x:%04x:%04x:%04x", 0x2408, g.r.IntN(65536), g.r.IntN(65536),
			g.r.IntN(65536), g.r.IntN(65536), g.r.IntN(65536), g.r.IntN(65536), g.r.IntN(65536))
	case 2:
		return strings.ToUpper(fmt.Sprintf("%s:%s:%s:%s:%s:%s:%s", prefix, h(), h(), h(), h(), h(), h()))
	case 3:
		return "::ffff:" + g.IPv4()
	}
	return fmt.Sprintf("%s::%s:%s", prefix, h(), h())
}

// MAC returns a MAC address with ':' or '-' separators, either case, or in
// Cisco's dotted form.
func (g *Gen) MAC() string {
	b := make([]byte, 6)
	for i := range b {
		b[i] = byte(g.r.IntN(256))
	}
	switch g.r.IntN(4) {
	case 0:
		return fmt.Sprintf("%02X:%02X:%02X:%02X:%02X:%02X", b[0], b[1], b[2], b[3], b[4], b[5])
	case 1:
		return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3], b[4], b[5])
	case 2:
		return fmt.Sprintf("%02X-%02X-%02X-%02X-%02X-%02X", b[0], b[1], b[2], b[3], b[4], b[5])
	}
	return fmt.Sprintf("%02x%02x.%02x%02x.%02x%02x", b[0], b[1], b[2], b[3], b[4], b[5])
}

// ---- other look-alikes ----

// OrderNumber returns an order or tracking number: date-and-time based runs
// of 18-20 digits, 18-19-digit marketplace numbers, 11-12-digit ones that
// begin with 2 or 3, dashed ones, letter-prefixed waybill numbers, and
// random runs of 12-20 digits.
func (g *Gen) OrderNumber() string {
	switch g.r.IntN(7) {
	case 6:
		return string(byte('1'+g.r.IntN(9))) + g.digits(11+g.r.IntN(9))
	case 0:
		return g.timestamp14() + g.digits(4+g.r.IntN(3))
	case 1:
		return string(byte('1'+g.r.IntN(3))) + g.digits(17+g.r.IntN(2))
	case 2:
		return string(byte('2'+g.r.IntN(2))) + g.digits(10+g.r.IntN(2))
	case 3:
		return g.timestamp14()[2:8] + "-" + g.digits(15)
	case 4:
		return pick(g, []string{"SF", "YT", "JD", "ZTO", "DD"}) + g.digits(12+g.r.IntN(4))
	}
	return g.timestamp14()[:8] + g.digits(8)
}

func (g *Gen) timestamp14() string {
	t := g.Date(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC))
	t = t.Add(time.Duration(g.r.IntN(86400)) * time.Second)
	return t.Format("20060102150405")
}

// Timestamp returns a timestamp without separators (20261101123045) or in
// Unix seconds or milliseconds.
func (g *Gen) Timestamp() string {
	switch g.r.IntN(3) {
	case 0:
		return fmt.Sprint(1600000000 + g.r.IntN(200000000))
	case 1:
		return fmt.Sprint(1600000000000 + g.r.Int64N(200000000000))
	}
	return g.timestamp14()
}

// Price returns a price as shops write it.
func (g *Gen) Price() string {
	yuan, fen := g.r.IntN(20000), g.r.IntN(100)
	switch g.r.IntN(4) {
	case 0:
		return fmt.Sprintf("¥%d.%02d", yuan, fen)
	case 1:
		return fmt.Sprintf("%d.%d元", yuan, fen%10)
	case 2:
		return fmt.Sprintf("%d,%03d.00元", 1+yuan/1000, yuan%1000)
	}
	return fmt.Sprintf("%d元", yuan)
}

// DateText returns a date in one of the usual Chinese notations.
func (g *Gen) DateText() string {
	t := g.Date(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 12, 31, 0, 0, 0, 0, time.UTC))
	return t.Format(pick(g, []string{"2006-01-02", "2006/01/02", "2006年1月2日", "2006.01.02", "20060102", "2006-01-02 15:04:05"}))
}

// Version returns a version string: v1.2.3, 1.2.3.4.5, Windows builds,
// pre-releases, and four-part versions after a version label.
func (g *Gen) Version() string {
	n := func() int { return g.r.IntN(20) }
	switch g.r.IntN(6) {
	case 0:
		return fmt.Sprintf("v%d.%d.%d", n(), n(), n())
	case 1:
		return fmt.Sprintf("%d.%d.%d.%d.%d", n(), n(), n(), n(), n())
	case 2:
		return fmt.Sprintf("V10.0.%d.%d", 19000+g.r.IntN(3000), g.r.IntN(5000))
	case 3:
		return fmt.Sprintf("%d.%d.%d-beta", n(), n(), n())
	case 4:
		return fmt.Sprintf("版本%d.%d.%d.%d", n(), n(), n(), n())
	}
	return fmt.Sprintf("version %d.%d.%d.%d", n(), n(), n(), n())
}

// FullWidth returns s with its printable ASCII characters replaced by their
// full-width forms (U+FF01..U+FF5E) and spaces by U+3000.
func FullWidth(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == ' ':
			b.WriteRune('\u3000')
		case r > ' ' && r < 0x7F:
			b.WriteRune(r + 0xFEE0)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
