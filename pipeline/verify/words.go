package verify

// This file holds the splitting of output text into the words looked up
// in the identifier filter.

// minIdentifierLen is the shortest value the identifier check looks for in
// every output column, as a whole value or a word of a text: shorter ones
// (small integers, codes) match by chance.
const minIdentifierLen = 6

// identByte marks the characters identifiers are written with: ASCII
// letters and digits and @ . _ + - :.
var identByte = func() (t [256]bool) {
	for c := range 256 {
		t[c] = c >= '0' && c <= '9' || c|0x20 >= 'a' && c|0x20 <= 'z' || c == '@' || c == '.' || c == '_' || c == '+' || c == '-' || c == ':'
	}
	return t
}()

// identByteBit is identByte as 0 and 1, for oneWord's loop without
// branches.
var identByteBit = func() (t [256]byte) {
	for c, in := range identByte {
		if in {
			t[c] = 1
		}
	}
	return t
}()

// oneWord reports whether v is made only of the characters identifiers are
// written with: its only word is itself.
func oneWord(v []byte) bool {
	ok := byte(1)
	for _, c := range v {
		ok &= identByteBit[c]
	}
	return ok == 1
}

// words calls fn with the value itself and, when it is longer, each run of
// the characters identifiers are written with (identByte), of at least
// minIdentifierLen bytes, each whose length is one keep accepts.
func words(v []byte, keep func(n int) bool, fn func([]byte)) {
	if len(v) >= minIdentifierLen && keep(len(v)) {
		fn(v)
	}
	for i := 0; i < len(v); {
		if !identByte[v[i]] {
			i++
			continue
		}
		start := i
		for i < len(v) && identByte[v[i]] {
			i++
		}
		if n := i - start; n >= minIdentifierLen && n < len(v) && keep(n) {
			fn(v[start:i])
		}
	}
}
