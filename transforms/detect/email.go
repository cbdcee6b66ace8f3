package detect

import (
	"bytes"
	"unicode"
	"unicode/utf8"
)

// Email finds e-mail addresses: a local part, an at sign ('@' or the
// full-width '＠') and a domain of at least two dot-separated labels whose
// last label (the top-level domain) is at least two letters. Characters
// count in their full-width forms too.
//
// The local part is the longest run before the at sign of ASCII letters,
// digits and ._%+- and of non-ASCII letters, digits and marks (RFC 6531
// internationalised addresses: "josé@example.com"), without leading dots.
// Han, kana, hangul and bopomofo are not taken into the local part: Chinese
// text has no spaces, so "邮箱是zhang@qq.com" must yield zhang@qq.com, not
// 邮箱是zhang@qq.com.
//
// The domain is ASCII (internationalised domains appear as punycode,
// xn--...): labels of letters, digits and '-', neither empty nor beginning
// or ending with '-'. As in the bench's pattern, the domain ends after the
// letters that follow its last dot, so "a@qq.com13812345678" yields a@qq.com.
type Email struct{}

// Name implements Detector.
func (Email) Name() string { return "email" }

// Token implements Detector.
func (Email) Token() string { return "[EMAIL]" }

var fullWidthAt = []byte("＠")

// Find implements Detector.
func (Email) Find(dst []Span, s []byte) []Span {
	from := 0    // a local part does not reach back before the previous match
	nextAt := -1 // next '@' at or after i, or len(s)
	nextFW := -1 // next '＠' at or after i, or len(s)
	for i := 0; i < len(s); {
		if nextAt < i {
			nextAt = indexFrom(s, i, func(b []byte) int { return bytes.IndexByte(b, '@') })
		}
		if nextFW < i {
			nextFW = indexFrom(s, i, func(b []byte) int { return bytes.Index(b, fullWidthAt) })
		}
		at, w := nextAt, 1
		if nextFW < at {
			at, w = nextFW, len(fullWidthAt)
		}
		if at == len(s) {
			break
		}
		if sp, ok := emailAt(s, at, w, from); ok {
			dst = append(dst, sp)
			from, i = sp.End, sp.End
			continue
		}
		i = at + w
	}
	return dst
}

// indexFrom returns the position of the next match of index in s[i:], or
// len(s).
func indexFrom(s []byte, i int, index func([]byte) int) int {
	if k := index(s[i:]); k >= 0 {
		return i + k
	}
	return len(s)
}

// emailAt matches the address around the at sign at s[at:at+w], with its
// local part starting no earlier than from.
func emailAt(s []byte, at, w, from int) (Span, bool) {
	start := at
	for start > from {
		c, cw := normBefore(s, start)
		if c == nonASCII {
			r, _ := utf8.DecodeLastRune(s[:start])
			if !localRune(r) {
				break
			}
		} else if charClass[c]&clEmailLocal == 0 {
			break
		}
		start -= cw
	}
	for start < at {
		c, cw := norm(s, start)
		if c != '.' {
			break
		}
		start += cw
	}
	if start == at {
		return Span{}, false
	}
	end := validDomainEnd(s, at+w)
	if end < 0 {
		return Span{}, false
	}
	return Span{start, end}, true
}

// localRune reports whether a non-ASCII rune may be part of a local part.
func localRune(r rune) bool {
	if r == utf8.RuneError || !(unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r)) {
		return false
	}
	return !unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul, unicode.Bopomofo)
}

// validDomainEnd returns the end of the domain that starts at i, or -1.
// Characters are read normalized; see Email.
func validDomainEnd(s []byte, i int) int {
	end := -1
	labelLen := 0 // of the label being read
	prev := byte(0)
	for j := i; j < len(s); {
		c, w := norm(s, j)
		switch {
		case c == '.':
			if labelLen == 0 || prev == '-' {
				return end
			}
			labelLen = 0
			// a top-level domain may follow: at least two letters
			k, letters := j+w, 0
			for {
				l, lw := norm(s, k)
				if !isLetter(l) {
					break
				}
				letters++
				k += lw
			}
			if letters >= 2 {
				end = k
			}
		case isAlnum(c) || c == '-':
			if labelLen == 0 && c == '-' {
				return end
			}
			labelLen++
		default:
			return end
		}
		prev = c
		j += w
	}
	return end
}

// ValidEmail reports whether v, in full, is an address the Email detector
// accepts.
func ValidEmail(v []byte) bool {
	at := bytes.IndexByte(v, '@')
	w := 1
	if fw := bytes.Index(v, fullWidthAt); fw >= 0 && (at < 0 || fw < at) {
		at, w = fw, len(fullWidthAt)
	}
	if at < 0 {
		return false
	}
	sp, ok := emailAt(v, at, w, 0)
	return ok && sp == Span{0, len(v)}
}
