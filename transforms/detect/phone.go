package detect

// Phone finds mainland China mobile numbers in the spellings people type:
//
//   - 11 digits: 13812345678
//   - in 3-4-4 groups separated by spaces, dashes or dots, one separator
//     throughout (text.go): 138 1234 5678, 138-1234-5678, 138.1234.5678
//   - with the country code +86, 0086 or 86, directly or after one space or
//     dash: +8613812345678, +86 138 1234 5678, 0086-13812345678, 86 13812345678
//   - with full-width digits, plus sign, spaces or dashes: １３８１２３４５６７８, ＋８６ …
//
// The number must begin with a mobile segment of the MIIT numbering plan:
// 13x, 145-149, 15x except 154, 162, 165-167, 170-178, 18x and 19x except
// 194. It is not part of a longer number (see the boundaries in text.go): an
// order number that contains 11 digits holds no phone number.
type Phone struct{}

// Name implements Detector.
func (Phone) Name() string { return "phone" }

// Token implements Detector.
func (Phone) Token() string { return "[PHONE]" }

// Find implements Detector.
func (Phone) Find(dst []Span, s []byte) []Span { return scanWords(dst, s, phoneAt) }

// mobileSegments[d] has bit t set when 1dt is a mobile segment.
var mobileSegments = [10]uint16{
	3: 0x3FF,
	4: 1<<5 | 1<<6 | 1<<7 | 1<<8 | 1<<9,
	5: 0x3FF &^ (1 << 4),
	6: 1<<2 | 1<<5 | 1<<6 | 1<<7,
	7: 0x1FF,
	8: 0x3FF,
	9: 0x3FF &^ (1 << 4),
}

func mobile(d []byte) bool { return d[0] == 1 && mobileSegments[d[1]]&(1<<d[2]) != 0 }

// phoneAt matches a phone number whose first digit is at i; a country code
// and a '+' before it are part of the match.
func phoneAt(s []byte, i int) (Span, bool) {
	if c, _ := norm(s, i); !isDigit(c) {
		return Span{}, false
	}
	var d [16]byte
	n, j := digitRun(s, i, d[:])
	switch n {
	case 2, 3, 4, 11, 13, 15:
	default:
		return Span{}, false
	}
	start := i
	c, w := normBefore(s, i)
	plus := c == '+'
	if plus {
		start -= w
	}
	if !leftFree(s, start, 0) {
		return Span{}, false
	}
	cc86 := n >= 2 && d[0] == 8 && d[1] == 6
	cc0086 := !plus && n >= 4 && d[0] == 0 && d[1] == 0 && d[2] == 8 && d[3] == 6
	switch {
	case cc86 && n == 13 && mobile(d[2:]), cc0086 && n == 15 && mobile(d[4:]):
		// country code and number in one run
		if !rightFree(s, j, 0) {
			return Span{}, false
		}
		return Span{start, j}, true
	case cc86 && n == 2, cc0086 && n == 4:
		// country code, one space or dash, the number
		_, next, ok := groupSep(s, j)
		if !ok {
			return Span{}, false
		}
		end, _, ok := nationalAt(s, next)
		return Span{start, end}, ok
	case plus:
		return Span{}, false // '+' and another country code
	}
	end, sep, ok := nationalAt(s, i)
	if !ok || (sep == ' ' && !leftFree(s, i, ' ')) {
		return Span{}, false
	}
	return Span{i, end}, true
}

// nationalAt matches the 11-digit national number at i, unseparated or in
// 3-4-4 groups, and returns its end and its group separator.
func nationalAt(s []byte, i int) (int, byte, bool) {
	var d [11]byte
	n, j := digitRun(s, i, d[:])
	var sep byte
	if n == 3 && mayGroup(s, j) {
		g := groupsAfter(s, d[:], false, n, j, 1<<4)
		if !g.is(3, 4, 4) {
			return 0, 0, false
		}
		n, j, sep = g.size, g.end, g.sep
	}
	return j, sep, n == 11 && mobile(d[:]) && rightFree(s, j, sep)
}

// ValidPhone reports whether v, in full, is a phone number the Phone
// detector accepts, in any of its spellings.
func ValidPhone(v []byte) bool {
	i := 0
	if c, w := norm(v, 0); c == '+' {
		i = w
	}
	sp, ok := phoneAt(v, i)
	return ok && sp == Span{0, len(v)}
}
