package detect

// MAC finds IEEE 802 MAC addresses (EUI-48): six pairs of hex digits
// separated by ':' or '-' (the same throughout: 00:1A:2B:3C:4D:5E,
// 00-1a-2b-3c-4d-5e), or three groups of four separated by '.' as Cisco
// writes them (001a.2b3c.4d5e). The match must not continue with another
// separator and hex digits, so a longer colon-separated run (an EUI-64, an
// IPv6 address) holds no MAC address.
type MAC struct{}

// Name implements Detector.
func (MAC) Name() string { return "mac" }

// Token implements Detector.
func (MAC) Token() string { return "[MAC]" }

// Find implements Detector.
func (MAC) Find(dst []Span, s []byte) []Span {
	from := 0
	for k := 2; k < len(s); k++ {
		var start, end int
		switch s[k] {
		case ':', '-':
			start = k - 2
			end = macAt(s, start, s[k])
		case '.':
			start = k - 4
			if start < 0 {
				continue
			}
			end = ciscoMACAt(s, start)
		default:
			continue
		}
		if end < 0 || start < from {
			continue
		}
		dst = append(dst, Span{start, end})
		from = end
		k = end - 1
	}
	return dst
}

// macAt returns the end of the colon or dash form that starts at i, or -1.
func macAt(s []byte, i int, sep byte) int {
	end := i + 17
	if end > len(s) {
		return -1
	}
	for g := 0; g < 6; g++ {
		p := i + 3*g
		if !isHex(s[p]) || !isHex(s[p+1]) || (g < 5 && s[p+2] != sep) {
			return -1
		}
	}
	if !macFree(s, i, end, sep) {
		return -1
	}
	return end
}

// ciscoMACAt returns the end of the dotted form that starts at i, or -1.
func ciscoMACAt(s []byte, i int) int {
	end := i + 14
	if end > len(s) {
		return -1
	}
	for g := 0; g < 3; g++ {
		p := i + 5*g
		if !isHex(s[p]) || !isHex(s[p+1]) || !isHex(s[p+2]) || !isHex(s[p+3]) || (g < 2 && s[p+4] != '.') {
			return -1
		}
	}
	if !macFree(s, i, end, '.') {
		return -1
	}
	return end
}

// macFree checks the boundaries of a MAC address at s[i:end]: no value
// character on either side, and no separator with a group of hex digits.
func macFree(s []byte, i, end int, sep byte) bool {
	if c, _ := normBefore(s, i); isAlnum(c) || (i >= 2 && s[i-1] == sep && isHex(s[i-2])) {
		return false
	}
	if c, _ := norm(s, end); isAlnum(c) || (end+1 < len(s) && s[end] == sep && isHex(s[end+1])) {
		return false
	}
	return true
}

// ValidMAC reports whether v, in full, is an address the MAC detector
// accepts.
func ValidMAC(v []byte) bool {
	switch len(v) {
	case 17:
		return macAt(v, 0, v[2]) == 17 && (v[2] == ':' || v[2] == '-')
	case 14:
		return ciscoMACAt(v, 0) == 14
	}
	return false
}
