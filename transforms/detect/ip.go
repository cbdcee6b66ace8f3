package detect

import (
	"net/netip"
	"unsafe"
)

// IP finds IPv4 and IPv6 addresses in text.
//
// A candidate is a maximal run of ASCII hex digits, '.' and ':' that holds a
// '.' or ':', less leading and trailing dots and a lone leading or trailing
// colon ("IP:1.2.3.4." yields 1.2.3.4). Like every value it must not touch a
// letter or digit outside the run.
//
// IPv4: four decimal octets 0-255 without leading zeros; a dotted quad that
// follows a version label ("v", "ver", "version", "版本", "版本号", then at
// most one space or colon) is a version number, not an address. A run that
// is longer, such as the version 1.2.3.4.5, holds no address. An IPv4
// address with a port (1.2.3.4:8080) yields the address.
//
// IPv6: the candidate must be an address net/netip parses, in any RFC 4291
// text form (full, "::"-compressed, with an embedded IPv4 address), with at
// least two non-empty groups, so that "::" and "::1" in code do not count. A
// zone ("%eth0") is not part of the match.
type IP struct{}

// Name implements Detector.
func (IP) Name() string { return "ip" }

// Token implements Detector.
func (IP) Token() string { return "[IP]" }

func isIPChar(c byte) bool { return charClass[c]&clIP != 0 }

// Find implements Detector.
func (IP) Find(dst []Span, s []byte) []Span {
	for i := 0; i < len(s); {
		k := i
		for k < len(s) && s[k] != '.' && s[k] != ':' {
			k++
		}
		if k == len(s) {
			break
		}
		a, b := k, k+1
		for a > i && isIPChar(s[a-1]) {
			a--
		}
		for b < len(s) && isIPChar(s[b]) {
			b++
		}
		if sp, ok := ipRun(s, a, b); ok {
			dst = append(dst, sp)
		}
		i = b
	}
	return dst
}

// ipRun finds the address in the candidate run s[a:b]. When the run
// continues a word, its first colon may end a label ("IPv6:2001:db8::1",
// where the 6 is a hex digit), so the part after it is tried instead.
func ipRun(s []byte, a, b int) (Span, bool) {
	if sp, ok := ipCandidate(s, a, b); ok {
		return sp, true
	}
	if c, _ := normBefore(s, a); !isAlnum(c) {
		return Span{}, false
	}
	for k := a; k+1 < b; k++ {
		if s[k] == ':' {
			if s[k+1] == ':' {
				break
			}
			return ipCandidate(s, k, b)
		}
	}
	return Span{}, false
}

// ipCandidate finds the address in s[a:b], less leading and trailing dots
// and a lone leading or trailing colon.
func ipCandidate(s []byte, a, b int) (Span, bool) {
	a0, b0 := a, b
	for a < b && s[a] == '.' {
		a++
	}
	for b > a && s[b-1] == '.' {
		b--
	}
	if b-a >= 2 && s[a] == ':' && s[a+1] != ':' {
		a++
	}
	if b-a >= 2 && s[b-1] == ':' && s[b-2] != ':' {
		b--
	}
	// The address must not touch a value character, unless a colon
	// separates them: a label ("IP:1.2.3.4") or a port.
	if c, _ := normBefore(s, a0); isAlnum(c) && (a == a0 || s[a-1] != ':') {
		return Span{}, false
	}
	if c, _ := norm(s, b0); isAlnum(c) && (b == b0 || s[b] != ':') {
		return Span{}, false
	}
	colon := -1
	for k := a; k < b; k++ {
		if s[k] == ':' {
			colon = k
			break
		}
	}
	if colon < 0 {
		if ipv4(s[a:b]) && !versionLabel(s, a) {
			return Span{a, b}, true
		}
		return Span{}, false
	}
	if ipv6(s[a:b]) {
		return Span{a, b}, true
	}
	// an IPv4 address and a port
	if ipv4(s[a:colon]) && !versionLabel(s, a) {
		return Span{a, colon}, true
	}
	return Span{}, false
}

// ipv4 reports whether v is a dotted-quad IPv4 address without leading
// zeros.
func ipv4(v []byte) bool {
	octets, val, digits := 0, 0, 0
	for k := 0; k <= len(v); k++ {
		if k == len(v) || v[k] == '.' {
			if digits == 0 || val > 255 {
				return false
			}
			octets++
			val, digits = 0, 0
			continue
		}
		c := v[k]
		if !isDigit(c) || (digits == 1 && val == 0) || digits == 3 {
			return false
		}
		val = val*10 + int(c-'0')
		digits++
	}
	return octets == 4
}

// ipv6 reports whether v is an IPv6 address with at least two non-empty
// groups (or an embedded IPv4 address). The RFC 4291 grammar is checked
// first, here, so that net/netip, which confirms it, only sees candidates
// it accepts: a rejection would allocate its error.
func ipv6(v []byte) bool {
	if len(v) < 3 || len(v) > 45 {
		return false
	}
	groups, double := 0, false
	for i := 0; i < len(v); {
		if v[i] == ':' {
			if i+1 < len(v) && v[i+1] == ':' {
				if double {
					return false
				}
				double = true
				i += 2
				continue
			}
			// a single colon separates two groups
			if i == 0 || i+1 == len(v) || v[i-1] == ':' {
				return false
			}
			i++
			continue
		}
		j := i
		for j < len(v) && isHex(v[j]) {
			j++
		}
		if j < len(v) && v[j] == '.' {
			// an embedded IPv4 address ends the text
			if !ipv4(v[i:]) {
				return false
			}
			groups += 2
			break
		}
		if j == i || j-i > 4 || (j < len(v) && v[j] != ':') {
			return false
		}
		groups++
		i = j
	}
	if groups < 2 || groups > 8 || (double && groups > 7) || (!double && groups != 8) {
		return false
	}
	// v holds no zone ('%' is not a candidate character), and
	// netip.ParseAddr keeps no reference to its argument then, so v is
	// passed without a copy.
	addr, err := netip.ParseAddr(unsafe.String(&v[0], len(v)))
	return err == nil && addr.Is6()
}

// versionLabel reports whether the text before i ends with a version label
// and at most one space or colon.
func versionLabel(s []byte, i int) bool {
	if c, w := normBefore(s, i); c == ' ' || c == ':' {
		i -= w
	}
	for _, label := range [...]string{"版本号", "版本"} {
		if i >= len(label) && string(s[i-len(label):i]) == label {
			return true
		}
	}
	k := i
	for k > 0 && isLetter(s[k-1]) {
		k--
	}
	if c, _ := normBefore(s, k); isAlnum(c) {
		return false
	}
	w := s[k:i]
	return equalFold(w, "v") || equalFold(w, "ver") || equalFold(w, "version")
}

// equalFold compares ASCII letters w with the lowercase word.
func equalFold(w []byte, word string) bool {
	if len(w) != len(word) {
		return false
	}
	for k := range w {
		if w[k]|0x20 != word[k] {
			return false
		}
	}
	return true
}

// ValidIP reports whether v, in full, is an address the IP detector accepts
// (its context aside: a version label before it is not looked at).
func ValidIP(v []byte) bool {
	if len(v) == 0 {
		return false
	}
	for _, c := range v {
		if !isIPChar(c) {
			return false
		}
	}
	return ipv4(v) || ipv6(v)
}
