package detect

import "unicode/utf8"

// This file holds the character model the validating detectors share.
//
// Normalized characters. Chinese input methods produce full-width forms of
// ASCII characters (１３８, ＋８６, ＠, ：); the detectors read the full-width
// forms U+FF01–U+FF5E as their ASCII counterparts and the ideographic space
// U+3000 as a space. norm and normBefore return such a normalized byte; every
// other non-ASCII rune reads as nonASCII, which is neither a letter, a digit
// nor punctuation. Invalid UTF-8 bytes read as nonASCII of width 1.
//
// Boundaries. A value character is an ASCII letter or digit, or its
// full-width form. A match is never preceded or followed by a value
// character, so "A13812345678" and "138123456789" hold no phone number, while
// Chinese characters, which are not value characters, delimit values:
// "电话13812345678谢谢" holds one. Numeric values are also not glued to a
// longer dotted or dashed number: a '.' or '-' between the value and another
// digit joins them ("2.13812345678", "13812345678-2"), and for values spelled
// in space-separated groups so does a space.

// nonASCII is the normalized form of any rune that is not ASCII, a
// full-width form of ASCII or U+3000.
const nonASCII = 0x80

// norm returns the normalized character at s[i] and its width in bytes; at
// or past the end of s it returns 0, 0.
func norm(s []byte, i int) (byte, int) {
	if i >= len(s) {
		return 0, 0
	}
	c := s[i]
	if c < utf8.RuneSelf {
		return c, 1
	}
	if i+2 < len(s) {
		b1, b2 := s[i+1], s[i+2]
		switch {
		case c == 0xEF && b1 == 0xBC && b2 >= 0x81 && b2 <= 0xBF: // U+FF01..U+FF3F
			return b2 - 0x81 + 0x21, 3
		case c == 0xEF && b1 == 0xBD && b2 >= 0x80 && b2 <= 0x9E: // U+FF40..U+FF5E
			return b2 - 0x80 + 0x60, 3
		case c == 0xE3 && b1 == 0x80 && b2 == 0x80: // U+3000
			return ' ', 3
		}
	}
	_, w := utf8.DecodeRune(s[i:])
	return nonASCII, w
}

// normBefore returns the normalized character that ends at s[i] (before
// position i) and its width; at the start of s it returns 0, 0.
func normBefore(s []byte, i int) (byte, int) {
	if i <= 0 {
		return 0, 0
	}
	c := s[i-1]
	if c < utf8.RuneSelf {
		return c, 1
	}
	if i >= 3 && (s[i-3] == 0xEF || s[i-3] == 0xE3) {
		if c, w := norm(s, i-3); w == 3 && c != nonASCII {
			return c, 3
		}
	}
	_, w := utf8.DecodeLastRune(s[:i])
	return nonASCII, w
}

// charClass bits, indexed by a normalized byte.
const (
	clDigit = 1 << iota
	clUpper
	clLower
	clHex
	clEmailLocal
	clIP
)

var charClass = func() (t [256]uint8) {
	for c := '0'; c <= '9'; c++ {
		t[c] |= clDigit | clHex | clEmailLocal | clIP
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] |= clUpper | clEmailLocal
		t[c+'a'-'A'] |= clLower | clEmailLocal
	}
	for _, c := range "abcdefABCDEF" {
		t[c] |= clHex | clIP
	}
	for _, c := range "._%+-" {
		t[c] |= clEmailLocal
	}
	t['.'] |= clIP
	t[':'] |= clIP
	return t
}()

func isDigit(c byte) bool  { return charClass[c]&clDigit != 0 }
func isLetter(c byte) bool { return charClass[c]&(clUpper|clLower) != 0 }
func isAlnum(c byte) bool  { return charClass[c]&(clDigit|clUpper|clLower) != 0 }
func isHex(c byte) bool    { return charClass[c]&clHex != 0 }

// leftFree reports whether a numeric value may start at i: the character
// before it is not a value character, and not a joiner preceded by a digit.
// The joiners are '.', '-' and, when sep is ' ', a space.
func leftFree(s []byte, i int, sep byte) bool {
	c, w := normBefore(s, i)
	if isAlnum(c) {
		return false
	}
	if c == '.' || c == '-' || (c == ' ' && sep == ' ') {
		d, _ := normBefore(s, i-w)
		return !isDigit(d)
	}
	return true
}

// rightFree reports whether a numeric value may end at j: the mirror image
// of leftFree.
func rightFree(s []byte, j int, sep byte) bool {
	c, w := norm(s, j)
	if isAlnum(c) {
		return false
	}
	if c == '.' || c == '-' || (c == ' ' && sep == ' ') {
		d, _ := norm(s, j+w)
		return !isDigit(d)
	}
	return true
}

// digitRun reads the run of (normalized) digits that starts at i. It stores
// the first len(buf) digit values (0-9) in buf and returns how many digits
// the run has, which may exceed len(buf), and where it ends.
func digitRun(s []byte, i int, buf []byte) (n, end int) {
	for i < len(s) {
		c := s[i]
		w := 1
		if c >= utf8.RuneSelf {
			c, w = norm(s, i)
		}
		if !isDigit(c) {
			break
		}
		if n < len(buf) {
			buf[n] = c - '0'
		}
		n++
		i += w
	}
	return n, i
}

// groupSep returns the separator at j when it is one that spelled numbers
// use between digit groups (a space, U+3000 or '-', each possibly
// full-width) and a digit follows it, with the position of that digit.
func groupSep(s []byte, j int) (sep byte, next int, ok bool) {
	c, w := norm(s, j)
	if c != ' ' && c != '-' {
		return 0, 0, false
	}
	if d, _ := norm(s, j+w); !isDigit(d) {
		return 0, 0, false
	}
	return c, j + w, true
}

// Digit groups. People type long identifiers in groups: "110101 19841104
// 8310", "6222-0200-0000-0007", "138.1234.5678". A group separator is one
// space (U+3000 too), one '-' or one '.', each also full-width; one
// identifier uses one separator throughout ("138-1234 5678" is refused, as
// is a run of two separators), and a line break, a tab, a comma or a slash
// never separates groups. The detectors list the groupings they accept and
// validate the check characters of the digits read, whatever the grouping.

// maxGroups is the most groups any accepted grouping has.
const maxGroups = 5

// groups is what groupsAt read.
type groups struct {
	n    uint8            // groups read; maxGroups+1 when more followed
	sep  byte             // the normalized separator, 0 for a single group
	lens [maxGroups]uint8 // their lengths, at most 255
	size int              // characters read, in all groups
	end  int              // the end of the last group read
}

// is reports whether the groups have exactly the lengths want.
func (g *groups) is(want ...uint8) bool {
	if int(g.n) != len(want) {
		return false
	}
	for k, w := range want {
		if g.lens[k] != w {
			return false
		}
	}
	return true
}

// isGroupSep reports whether the normalized c separates digit groups.
func isGroupSep(c byte) bool { return c == ' ' || c == '-' || c == '.' }

// mayGroup is a quick test that a group separator may be at j: its first
// byte is that of a separator, of U+3000 or of a full-width form. It lets
// the detectors skip groupsAfter on text without groups.
func mayGroup(s []byte, j int) bool {
	if j >= len(s) {
		return false
	}
	c := s[j]
	return c == ' ' || c == '-' || c == '.' || c == 0xE3 || c == 0xEF
}

// groupsAfter reads the groups of a number whose first group, a run of n
// digits (of USCC characters when uscc is set) stored in buf, ends at j:
// further runs, each after one separator, the same throughout. It stores
// the first len(buf) characters in buf (digit values, or normalized USCC
// characters) and stops at a character that is not the separator followed
// by a run, or after maxGroups groups, counting one more when another
// follows. The detectors call it only after a first run as long as the
// first group of one of their groupings, so that text without groups costs
// no more than before and a complete value such as "13812345678" is a value
// of its own even when a space and more digits follow it. Reading also
// stops after a second group whose length n does not have bit n set in
// second: no grouping the caller accepts goes on from there.
func groupsAfter(s []byte, buf []byte, uscc bool, n, j int, second uint32) (g groups) {
	g.n, g.lens[0], g.size, g.end = 1, uint8(min(n, 255)), n, j
	for {
		c, w := norm(s, j)
		if !isGroupSep(c) || (g.sep != 0 && c != g.sep) {
			return g
		}
		rest := buf[min(g.size, len(buf)):]
		var m, end int
		if uscc {
			m, end = usccRun(s, j+w, rest)
		} else {
			m, end = digitRun(s, j+w, rest)
		}
		if m == 0 || (g.n == 1 && (m >= 32 || second&(1<<m) == 0)) {
			return g
		}
		if g.n == maxGroups {
			g.n++
			return g
		}
		g.sep = c
		g.lens[g.n] = uint8(min(m, 255))
		g.n++
		g.size += m
		g.end, j = end, end
	}
}

// usccRun is digitRun for the characters of unified social credit codes:
// it stores their normalized bytes.
func usccRun(s []byte, i int, buf []byte) (n, end int) {
	for i < len(s) {
		c := s[i]
		w := 1
		if c >= utf8.RuneSelf {
			c, w = norm(s, i)
		}
		if usccValue[c] == 0 {
			break
		}
		if n < len(buf) {
			buf[n] = c
		}
		n++
		i += w
	}
	return n, i
}

// scanWords calls try at the start of every word of s, a maximal run of
// value characters, and appends the spans it reports. try returns the span
// of a match that ends at or after the word start (a match may begin a
// little before it, at a '+', or after it, past a label). After a match the
// scan resumes at its end, otherwise after the word.
func scanWords(dst []Span, s []byte, try func(s []byte, i int) (Span, bool)) []Span {
	for i := 0; i < len(s); {
		c := s[i]
		w := 1
		if c >= utf8.RuneSelf {
			// of the non-ASCII runes only U+FF01..U+FF5E (EF BC xx, EF BD
			// xx) can be value characters; other three-byte runes, most of
			// Chinese text, are skipped whole
			if c != 0xEF {
				if c >= 0xE0 && c < 0xF0 && i+2 < len(s) && s[i+1]&0xC0 == 0x80 && s[i+2]&0xC0 == 0x80 {
					i += 3
				} else {
					i++
				}
				continue
			}
			c, w = norm(s, i)
		}
		if !isAlnum(c) {
			i += w
			continue
		}
		if sp, ok := try(s, i); ok {
			dst = append(dst, sp)
			i = sp.End
			continue
		}
		i = wordEnd(s, i)
	}
	return dst
}

// wordEnd returns the end of the run of value characters that starts at i.
func wordEnd(s []byte, i int) int {
	for i < len(s) {
		c := s[i]
		w := 1
		if c >= utf8.RuneSelf {
			c, w = norm(s, i)
		}
		if !isAlnum(c) {
			break
		}
		i += w
	}
	return i
}

// luhn reports whether the digits d pass the Luhn check (ISO/IEC 7812-1).
func luhn(d []byte) bool {
	sum := 0
	for i := range d {
		v := int(d[len(d)-1-i])
		if i%2 == 1 {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	return sum%10 == 0
}

// provinceCodes marks the first two digits of the administrative division
// codes of GB/T 2260 in use: the provinces, autonomous regions and
// municipalities (11-65), Taiwan (71), Hong Kong (81), Macao (82), and 83,
// which the residence permits of Taiwan residents use.
var provinceCodes = func() (t [100]bool) {
	for _, p := range []int{11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46,
		50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 83} {
		t[p] = true
	}
	return t
}()
