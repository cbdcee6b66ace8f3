package detect

// The two detectors in this file implement the bench's reference policy
// (shared/bench/WORKLOAD.md, "Redaction of search_query") byte for byte. They
// are deliberately literal: they do not validate number plans or accept
// full-width forms, because the reference output must be reproduced exactly.

// EmailBench matches [A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,} with the
// leftmost-first, greedy semantics of Go's regexp (and RE2, Perl), scanning
// left to right for non-overlapping matches. It is a hand-written scanner
// equivalent to the regular expression; a differential fuzz test checks it
// against regexp.
type EmailBench struct{}

// Name implements Detector.
func (EmailBench) Name() string { return "email_bench" }

// Token implements Detector.
func (EmailBench) Token() string { return "[EMAIL]" }

// Find implements Detector.
//
// How the scanner mirrors the regexp: the local part's class excludes '@', so
// a match must start at the beginning of a run of local-part characters that
// ends exactly at an '@' (starting later in the run only gives a later, not a
// leftmost, match with the same end). After the '@' the greedy domain part
// [A-Za-z0-9.-]+ backtracks from the end of its maximal run until it is
// followed by '.' and at least two letters; the letters are then taken
// greedily. So the match ends after the letter run that follows the last
// qualifying '.' in the run. If no '.' qualifies, no match uses this '@', and
// the scan resumes after it.
func (EmailBench) Find(dst []Span, s []byte) []Span {
	from := 0 // matches are searched in s[from:]
	for at := indexByte(s, '@', from); at >= 0; at = indexByte(s, '@', at+1) {
		// local part: the run of local characters ending at '@', not before from
		start := at
		for start > from && isEmailLocal(s[start-1]) {
			start--
		}
		if start == at {
			continue
		}
		end := emailDomainEnd(s, at+1)
		if end < 0 {
			continue
		}
		dst = append(dst, Span{start, end})
		from = end
		at = end - 1 // the domain is not empty, so the next '@' is at or after end
	}
	return dst
}

// emailDomainEnd returns the end of [A-Za-z0-9.-]+\.[A-Za-z]{2,} starting at
// i (greedy with backtracking), or -1 when it does not match there.
func emailDomainEnd(s []byte, i int) int {
	j := i
	for j < len(s) && isEmailDomain(s[j]) {
		j++
	}
	// the '.' before the TLD must leave at least one domain character before it
	// and be followed by at least two letters; prefer the last such '.'.
	for dot := j - 3; dot > i; dot-- {
		if s[dot] != '.' {
			continue
		}
		k := dot + 1
		for k < len(s) && isASCIILetter(s[k]) {
			k++
		}
		if k-dot-1 >= 2 {
			return k
		}
	}
	return -1
}

func indexByte(s []byte, c byte, from int) int {
	for i := from; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

func isASCIILetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

func isASCIIDigit(c byte) bool { return c >= '0' && c <= '9' }

func isEmailLocal(c byte) bool {
	return isASCIILetter(c) || isASCIIDigit(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-'
}

func isEmailDomain(c byte) bool {
	return isASCIILetter(c) || isASCIIDigit(c) || c == '.' || c == '-'
}

// PhoneBench matches every maximal run of ASCII digits that is exactly 11
// long and matches 1[3-9][0-9]{9}: the PCRE rule
// (?<![0-9])1[3-9][0-9]{9}(?![0-9]). Full-width digits are not digits here.
type PhoneBench struct{}

// Name implements Detector.
func (PhoneBench) Name() string { return "phone_bench" }

// Token implements Detector.
func (PhoneBench) Token() string { return "[PHONE]" }

// Find implements Detector.
func (PhoneBench) Find(dst []Span, s []byte) []Span {
	for i := 0; i < len(s); {
		if !isASCIIDigit(s[i]) {
			i++
			continue
		}
		j := i + 1
		for j < len(s) && isASCIIDigit(s[j]) {
			j++
		}
		if j-i == 11 && s[i] == '1' && s[i+1] >= '3' {
			dst = append(dst, Span{i, j})
		}
		i = j
	}
	return dst
}
