package detect

// The detectors in this file find identity numbers that carry a check
// character, and validate it, so that order numbers, timestamps and other
// long numbers survive: resident identity numbers, bank card numbers, IMEIs
// and unified social credit codes.

// ResidentID finds the 18-character citizen identity numbers of the People's
// Republic of China (GB 11643-1999): a six-digit address code, an eight-digit
// birth date, a three-digit sequence and an ISO 7064 MOD 11-2 check
// character (0-9 or X, also x). It validates the check character, the
// province of the address code (GB/T 2260, see provinceCodes) and the birth
// date, which must be a calendar date in the years 1900-2100. It accepts the
// number unseparated and in the groupings people type, 6-8-4 (address, birth
// date, sequence and check: "110101 19841104 8310") and 6-4-4-4 ("110101
// 1984 1104 8310"), with one group separator throughout (text.go).
type ResidentID struct{}

// Name implements Detector.
func (ResidentID) Name() string { return "resident_id" }

// Token implements Detector.
func (ResidentID) Token() string { return "[ID_CARD]" }

// Find implements Detector.
func (ResidentID) Find(dst []Span, s []byte) []Span { return scanWords(dst, s, residentIDAt) }

func residentIDAt(s []byte, i int) (Span, bool) {
	var d [18]byte
	n, j := digitRun(s, i, d[:])
	var sep byte
	if n == 6 && mayGroup(s, j) {
		// 6-8-4 or 6-4-4-4, the last group possibly ending in X
		g := groupsAfter(s, d[:], false, n, j, 1<<8|1<<4)
		if g.n > maxGroups {
			return Span{}, false
		}
		last := g.lens[g.n-1]
		g.lens[g.n-1] = 4
		if (last != 3 && last != 4) || !(g.is(6, 8, 4) || g.is(6, 4, 4, 4)) {
			return Span{}, false
		}
		n, j, sep = g.size, g.end, g.sep
	}
	switch n {
	case 18:
	case 17:
		c, w := norm(s, j)
		if c != 'X' && c != 'x' {
			return Span{}, false
		}
		d[17] = 10
		j += w
	default:
		return Span{}, false
	}
	if !validResidentID(&d) || !leftFree(s, i, sep) || !rightFree(s, j, sep) {
		return Span{}, false
	}
	return Span{i, j}, true
}

// residentIDWeights are 2^(18-i) mod 11 for i = 1..17 (ISO 7064 MOD 11-2).
var residentIDWeights = [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}

// validResidentID checks the digit values of an identity number, the check
// character given as 10 for X.
func validResidentID(d *[18]byte) bool {
	if !provinceCodes[int(d[0])*10+int(d[1])] {
		return false
	}
	if !birthDate(d[6:14]) {
		return false
	}
	sum := 0
	for k, w := range residentIDWeights {
		if d[k] > 9 {
			return false
		}
		sum += int(d[k]) * w
	}
	return int(d[17]) == (12-sum%11)%11
}

// birthDate reports whether the eight digit values d are a date YYYYMMDD in
// the years 1900-2100.
func birthDate(d []byte) bool {
	year := int(d[0])*1000 + int(d[1])*100 + int(d[2])*10 + int(d[3])
	month := int(d[4])*10 + int(d[5])
	day := int(d[6])*10 + int(d[7])
	return year >= 1900 && year <= 2100 && month >= 1 && month <= 12 && day >= 1 && day <= daysIn(year, month)
}

func daysIn(year, month int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// ValidResidentID reports whether v, in full, is an identity number the
// ResidentID detector accepts (ASCII or full-width digits), in any of its
// spellings.
func ValidResidentID(v []byte) bool {
	sp, ok := residentIDAt(v, 0)
	return ok && sp == Span{0, len(v)}
}

// BankCard finds payment card numbers of 16 to 19 digits, written without
// separators or in groups of four, the last possibly shorter, with one group
// separator throughout: a space, a dash or a dot (text.go), as in
// "6222 0212 3456 7890 123". It validates the Luhn check digit and the
// issuer: UnionPay (62, 16-19 digits), Visa (4, 16 or 19 digits; 19-digit
// Visa numbers include China Construction Bank's 436742 debit cards),
// Mastercard (51-55 and 2221-2720, 16 digits), and the pre-UnionPay debit
// BINs of three large Chinese banks, 19 digits each: ICBC 9558, Bank of China
// 601382 and Bank of Communications 601428. An 18-digit number beginning 62
// with a birth date (1900-2100) in digits 7-14 is taken for a resident
// identity number from Gansu (province 62), not a card.
type BankCard struct{}

// Name implements Detector.
func (BankCard) Name() string { return "bank_card" }

// Token implements Detector.
func (BankCard) Token() string { return "[BANK_CARD]" }

// Find implements Detector.
func (BankCard) Find(dst []Span, s []byte) []Span { return scanWords(dst, s, bankCardAt) }

func bankCardAt(s []byte, i int) (Span, bool) {
	var d [20]byte
	n, j := digitRun(s, i, d[:])
	var sep byte
	if n == 4 && mayGroup(s, j) {
		// groups of four; the last may be shorter
		g := groupsAfter(s, d[:], false, n, j, 1<<4)
		if g.n < 4 || g.n > 5 || g.lens[g.n-1] > 4 {
			return Span{}, false
		}
		for k := 1; k < int(g.n)-1; k++ {
			if g.lens[k] != 4 {
				return Span{}, false
			}
		}
		n, j, sep = g.size, g.end, g.sep
	}
	if n < 16 || n > 19 || !validCard(d[:n]) || !leftFree(s, i, sep) || !rightFree(s, j, sep) {
		return Span{}, false
	}
	return Span{i, j}, true
}

// validCard checks the issuer prefix, length and Luhn digit of a card number.
func validCard(d []byte) bool {
	n := len(d)
	p2 := int(d[0])*10 + int(d[1])
	p4 := p2*100 + int(d[2])*10 + int(d[3])
	p6 := p4*100 + int(d[4])*10 + int(d[5])
	ok := false
	switch {
	case p2 == 62:
		// 16-19 digits, checked by the caller; 62 is also Gansu's province
		// code, and an 18-digit number with a birth date in digits 7-14 is
		// taken for a resident identity number (valid or mistyped)
		ok = n != 18 || !birthDate(d[6:14])
	case d[0] == 4:
		ok = n == 16 || n == 19
	case p2 >= 51 && p2 <= 55, p4 >= 2221 && p4 <= 2720:
		ok = n == 16
	case p4 == 9558, p6 == 601382, p6 == 601428:
		ok = n == 19
	}
	return ok && luhn(d)
}

// ValidBankCard reports whether v, in full, is a card number the BankCard
// detector accepts, in any of its spellings.
func ValidBankCard(v []byte) bool {
	sp, ok := bankCardAt(v, 0)
	return ok && sp == Span{0, len(v)}
}

// IMEI finds International Mobile Equipment Identities: 15 digits whose last
// is a Luhn check digit (3GPP TS 23.003) and whose first two digits are a
// reporting body identifier the GSMA has allocated (see imeiRBI). It accepts
// them unseparated and in the printed groupings 2-6-6-1 ("35-209900-176148-1")
// and 8-6-1, with one group separator throughout: a space, a dash or a dot
// (text.go). Directly after the label "IMEI" (any case)
// the number may touch it: "IMEI352099001761481".
type IMEI struct{}

// Name implements Detector.
func (IMEI) Name() string { return "imei" }

// Token implements Detector.
func (IMEI) Token() string { return "[IMEI]" }

// Find implements Detector.
func (IMEI) Find(dst []Span, s []byte) []Span { return scanWords(dst, s, imeiAt) }

// imeiRBI marks the reporting body identifiers (the first two digits of the
// type allocation code) the GSMA lists: 01 PTCRB, 10 DECT, 30 Iridium, 33
// DGPT, 35 BABT, 44 BABT, 45 NTA, 49 BNetzA, 50-54 German bodies, 86 TAF
// (China), 91 MSAI (India), 98 BABT, 99 GHA.
var imeiRBI = func() (t [100]bool) {
	for _, r := range []int{1, 10, 30, 33, 35, 44, 45, 49, 50, 51, 52, 53, 54, 86, 91, 98, 99} {
		t[r] = true
	}
	return t
}()

func imeiAt(s []byte, i int) (Span, bool) {
	labelled := false
	if c, w := norm(s, i); c == 'I' || c == 'i' {
		j := i + w
		for _, want := range "MEI" {
			c, w := norm(s, j)
			if c&^0x20 != byte(want) {
				return Span{}, false
			}
			j += w
		}
		if c, _ := norm(s, j); !isDigit(c) {
			return Span{}, false
		}
		i, labelled = j, true
	}
	var d [16]byte
	n, j := digitRun(s, i, d[:])
	var sep byte
	if (n == 2 || n == 8) && mayGroup(s, j) {
		// 2-6-6-1 or 8-6-1
		g := groupsAfter(s, d[:], false, n, j, 1<<6)
		if !g.is(2, 6, 6, 1) && !g.is(8, 6, 1) {
			return Span{}, false
		}
		n, j, sep = g.size, g.end, g.sep
	}
	if n != 15 || !imeiRBI[int(d[0])*10+int(d[1])] || !luhn(d[:15]) || !rightFree(s, j, sep) || (!labelled && !leftFree(s, i, sep)) {
		return Span{}, false
	}
	return Span{i, j}, true
}

// ValidIMEI reports whether v, in full, is an IMEI the IMEI detector
// accepts, in any of its spellings (without the label).
func ValidIMEI(v []byte) bool {
	if c, _ := norm(v, 0); !isDigit(c) {
		return false
	}
	sp, ok := imeiAt(v, 0)
	return ok && sp == Span{0, len(v)}
}

// USCC finds the unified social credit codes of legal persons and other
// organisations (GB 32100-2015): 18 characters from 0-9 and the capital
// letters other than I, O, Z, S and V. It validates the registration
// authority (1-9, A, N or Y) and the category (a digit 1-9), the province of
// the administrative division code in characters 3-8 (GB/T 2260),
// the GB 11714 check character of the organisation code in characters 9-17,
// and the check character 18 (weights 3^(i-1) mod 31, check 31 - sum mod 31).
// Codes are mostly written unbroken; it also accepts the grouping of the
// code's parts, 2-6-9-1 (authority and category, division, organisation
// code, check: "91 350100 M000100Y4 3"), and groups of four, 4-4-4-4-2, with
// one group separator throughout (text.go).
type USCC struct{}

// Name implements Detector.
func (USCC) Name() string { return "uscc" }

// Token implements Detector.
func (USCC) Token() string { return "[USCC]" }

// Find implements Detector.
func (USCC) Find(dst []Span, s []byte) []Span { return scanWords(dst, s, usccAt) }

// usccValue maps a normalized byte to its GB 32100 value plus one; zero
// marks a character outside the charset.
var usccValue = func() (t [256]byte) {
	for v, c := range "0123456789ABCDEFGHJKLMNPQRTUWXY" {
		t[c] = byte(v + 1)
	}
	return t
}()

var usccWeights = [17]int{1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28}

// orgCodeWeights are GB 11714-1997's weights for the organisation code.
var orgCodeWeights = [8]int{3, 7, 9, 10, 5, 8, 4, 2}

func usccAt(s []byte, i int) (Span, bool) {
	var c [18]byte // normalized characters
	n, j := usccRun(s, i, c[:])
	var sep byte
	if (n == 2 || n == 4) && mayGroup(s, j) {
		// 2-6-9-1 or 4-4-4-4-2
		g := groupsAfter(s, c[:], true, n, j, 1<<6|1<<4)
		if !g.is(2, 6, 9, 1) && !g.is(4, 4, 4, 4, 2) {
			return Span{}, false
		}
		n, j, sep = g.size, g.end, g.sep
	}
	if n != 18 || !validUSCC(&c) || !rightFree(s, j, sep) || !leftFree(s, i, sep) {
		return Span{}, false
	}
	return Span{i, j}, true
}

func validUSCC(c *[18]byte) bool {
	switch c[0] {
	case '1', '2', '3', '4', '5', '6', '7', '8', '9', 'A', 'N', 'Y':
	default:
		return false
	}
	if c[1] < '1' || c[1] > '9' {
		return false
	}
	for _, ch := range c[2:8] {
		if !isDigit(ch) {
			return false
		}
	}
	if !provinceCodes[int(c[2]-'0')*10+int(c[3]-'0')] {
		return false
	}
	// the organisation code: letters count A=10 .. Z=35 (GB 11714)
	sum := 0
	for k, w := range orgCodeWeights {
		ch := c[8+k]
		v := int(ch - '0')
		if !isDigit(ch) {
			v = int(ch-'A') + 10
		}
		sum += v * w
	}
	var want byte
	switch r := 11 - sum%11; r {
	case 10:
		want = 'X'
	case 11:
		want = '0'
	default:
		want = '0' + byte(r)
	}
	if c[16] != want {
		return false
	}
	sum = 0
	for k, w := range usccWeights {
		sum += int(usccValue[c[k]]-1) * w
	}
	return int(usccValue[c[17]]-1) == (31-sum%31)%31
}

// ValidUSCC reports whether v, in full, is a code the USCC detector accepts.
func ValidUSCC(v []byte) bool {
	sp, ok := usccAt(v, 0)
	return ok && sp == Span{0, len(v)}
}
