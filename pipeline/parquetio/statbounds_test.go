package parquetio

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestBoundMinMax: statistics of byte strings past the limit are cut to a
// prefix (min) or rounded up to a string of at most limit bytes that sorts
// after the value (max), UTF-8 columns keep valid UTF-8, and values up to
// the limit are kept as they are.
func TestBoundMinMax(t *testing.T) {
	const limit = 8
	rep := strings.Repeat
	for _, c := range []struct {
		name  string
		v     string
		text  bool
		min   string
		max   string
		noMax bool
	}{
		{name: "empty", v: "", text: true, min: "", max: ""},
		{name: "empty binary", v: "", min: "", max: ""},
		{name: "short", v: "abc", text: true, min: "abc", max: "abc"},
		{name: "exactly the limit", v: "abcdefgh", text: true, min: "abcdefgh", max: "abcdefgh"},
		{name: "exactly the limit, all 0xFF", v: rep("\xff", 8), min: rep("\xff", 8), max: rep("\xff", 8)},
		{name: "one over", v: "abcdefghi", text: true, min: "abcdefgh", max: "abcdefgi"},
		{name: "one over, binary", v: "abcdefghi", min: "abcdefgh", max: "abcdefgi"},
		{name: "huge ASCII", v: rep("a", 1<<20), text: true, min: "aaaaaaaa", max: "aaaaaaab"},
		{name: "last byte z", v: "aaaaaaaz" + "zz", text: true, min: "aaaaaaaz", max: "aaaaaaa{"},
		{name: "last ASCII U+007F", v: "aaaaaaa\x7f" + "x", text: true, min: "aaaaaaa\x7f", max: "aaaaaab"},
		{name: "last ASCII U+007F, binary", v: "aaaaaaa\x7f" + "x", min: "aaaaaaa\x7f", max: "aaaaaaa\x80"},
		// € is 3 bytes: the limit falls in the third one
		{name: "cut inside a 3-byte sequence", v: rep("€", 5), text: true, min: "€€", max: "€₭"},
		{name: "cut inside a 3-byte sequence, binary", v: rep("€", 5), min: "\xe2\x82\xac\xe2\x82\xac\xe2\x82",
			max: "\xe2\x82\xac\xe2\x82\xac\xe2\x83"},
		{name: "cut inside a 2-byte sequence", v: "a" + rep("é", 6), text: true, min: "aééé", max: "aééê"},
		{name: "cut inside a 4-byte sequence", v: "aaaaa" + rep("😀", 3), text: true, min: "aaaaa", max: "aaaab"},
		{name: "cut after a 4-byte sequence", v: "aaaa" + rep("😀", 3), text: true, min: "aaaa😀", max: "aaaa😁"},
		{name: "U+10FFFF tail", v: "ab" + rep("\U0010FFFF", 3), text: true, min: "ab\U0010FFFF", max: "ac"},
		{name: "all U+10FFFF", v: rep("\U0010FFFF", 3), text: true, min: "\U0010FFFF\U0010FFFF", noMax: true},
		{name: "U+D7FF skips the surrogates", v: "aaaaa\ud7ff" + "bbb", text: true, min: "aaaaa\ud7ff", max: "aaaaa\ue000"},
		{name: "U+FFFF successor too long", v: "aaaaa\uffff" + "bbb", text: true, min: "aaaaa\uffff", max: "aaaab"},
		{name: "0xFF tail", v: "ab" + rep("\xff", 10), min: "ab\xff\xff\xff\xff\xff\xff", max: "ac"},
		{name: "0xFF tail, text (invalid UTF-8)", v: "ab" + rep("\xff", 10), text: true, min: "ab\xff\xff\xff\xff\xff\xff", max: "ac"},
		{name: "all 0xFF", v: rep("\xff", 20), min: rep("\xff", 8), noMax: true},
		{name: "all 0xFF, text (invalid UTF-8)", v: rep("\xff", 20), text: true, min: rep("\xff", 8), noMax: true},
		{name: "invalid UTF-8 continuation bytes", v: rep("\x80", 12), text: true, min: rep("\x80", 8), max: rep("\x80", 7) + "\x81"},
		{name: "NUL bytes", v: rep("\x00", 12), text: true, min: rep("\x00", 8), max: rep("\x00", 7) + "\x01"},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := []byte(c.v)
			for _, in := range [][]byte{v, statKey(v, limit)} { // the chunk keeps only statKey
				mn, exactMin := boundMin(in, limit, c.text)
				mx, exactMax, ok := boundMax(in, limit, c.text)
				if string(mn) != c.min {
					t.Errorf("min %q, want %q", mn, c.min)
				}
				if ok == c.noMax || ok && string(mx) != c.max {
					t.Errorf("max %q (ok %v), want %q (ok %v)", mx, ok, c.max, !c.noMax)
				}
				exact := len(v) <= limit
				if exactMin != exact || exactMax != exact {
					t.Errorf("exact %v %v, want %v", exactMin, exactMax, exact)
				}
				// the invariants every reader relies on
				if len(mn) > limit || len(mx) > limit {
					t.Errorf("bound longer than %d: %q %q", limit, mn, mx)
				}
				if bytes.Compare(mn, v) > 0 || ok && bytes.Compare(mx, v) < 0 {
					t.Errorf("%q, %q do not bound %q", mn, mx, v)
				}
				if c.text && utf8.Valid(v) && (!utf8.Valid(mn) || !utf8.Valid(mx)) {
					t.Errorf("invalid UTF-8 bound %q %q of a valid string", mn, mx)
				}
				// a chunk of this value alone: both statistics or neither
				lo, hi, both := boundMinMax(in, in, limit, c.text)
				if both != ok || both && (!bytes.Equal(lo, mn) || !bytes.Equal(hi, mx)) || !both && (lo != nil || hi != nil) {
					t.Errorf("boundMinMax: %q %q (ok %v), want %q %q (ok %v)", lo, hi, both, mn, mx, ok)
				}
				// under a short min (it is exact), still neither without a max
				if lo, hi, both := boundMinMax([]byte("\x00"), in, limit, c.text); both != ok || !both && (lo != nil || hi != nil) {
					t.Errorf("boundMinMax with a short min: %q %q (ok %v), want ok %v", lo, hi, both, ok)
				}
			}
		})
	}
}

// TestStatKeyKeepsOrder: the statistics of a chunk keep only each value's
// first limit+1 bytes; the bounds of the least and greatest key are those
// of the least and greatest value.
func TestStatKeyKeepsOrder(t *testing.T) {
	const limit = 4
	vals := []string{"", "a", "abcd", "abcde", "abcdef", "abcdeg", "abcdf", "abce", "\xff\xff\xff\xff\xff\xff", "\xff\xff\xff\xff\xfe"}
	for _, a := range vals {
		for _, b := range vals {
			ka, kb := statKey([]byte(a), limit), statKey([]byte(b), limit)
			if a < b && bytes.Compare(ka, kb) > 0 {
				t.Errorf("%q < %q but key %q > %q", a, b, ka, kb)
			}
		}
		for _, text := range []bool{false, true} {
			k := statKey([]byte(a), limit)
			m1, _ := boundMin([]byte(a), limit, text)
			m2, _ := boundMin(k, limit, text)
			x1, _, ok1 := boundMax([]byte(a), limit, text)
			x2, _, ok2 := boundMax(k, limit, text)
			if !bytes.Equal(m1, m2) || !bytes.Equal(x1, x2) || ok1 != ok2 {
				t.Errorf("%q: bounds of the value %q %q, of its key %q %q", a, m1, x1, m2, x2)
			}
		}
	}
}

// FuzzBoundMinMax: for any value and limit, a chunk gets a min and a max
// or neither (boundMinMax); the bounds are at most limit bytes, bound the
// value bytewise, are the value itself when it fits, stay valid UTF-8 for
// a valid string of a UTF-8 column, and depend only on the value's
// statKey.
func FuzzBoundMinMax(f *testing.F) {
	for _, s := range []string{"", "abc", "€€€€", "\xff\xff\xff", "a\U0010FFFF\U0010FFFF", "\ud7ff\ud7ff", "\x7f\x7f\x7f"} {
		f.Add([]byte(s), uint8(2), true)
		f.Add([]byte(s), uint8(3), false)
	}
	f.Fuzz(func(t *testing.T, v []byte, lim uint8, text bool) {
		limit := int(lim%64) + 1
		// a chunk whose least value is a prefix of v and greatest v: min
		// and max both, or neither
		lo := v[:len(v)/2]
		cmn, cmx, both := boundMinMax(lo, v, limit, text)
		if _, _, ok := boundMax(v, limit, text); both != ok {
			t.Fatalf("%q: boundMinMax ok %v, boundMax ok %v", v, both, ok)
		}
		if !both && (cmn != nil || cmx != nil) || both && (cmn == nil || cmx == nil) {
			t.Fatalf("%q: min %q and max %q, ok %v: one without the other", v, cmn, cmx, both)
		}
		if both && (bytes.Compare(cmn, lo) > 0 || bytes.Compare(cmx, v) < 0) {
			t.Fatalf("%q: [%q, %q] does not hold [%q, %q]", v, cmn, cmx, lo, v)
		}
		mn, exactMin := boundMin(v, limit, text)
		mx, exactMax, ok := boundMax(v, limit, text)
		if len(mn) > limit || len(mx) > limit {
			t.Fatalf("%q: bounds %q %q longer than %d", v, mn, mx, limit)
		}
		if bytes.Compare(mn, v) > 0 || ok && bytes.Compare(mx, v) < 0 {
			t.Fatalf("%q: %q %q do not bound it", v, mn, mx)
		}
		fits := len(v) <= limit
		if exactMin != fits || exactMax != fits || fits && (!ok || !bytes.Equal(mn, v) || !bytes.Equal(mx, v)) {
			t.Fatalf("%q (limit %d): %q %q exact %v %v ok %v", v, limit, mn, mx, exactMin, exactMax, ok)
		}
		if text && utf8.Valid(v) && (!utf8.Valid(mn) || !utf8.Valid(mx)) {
			t.Fatalf("%q: bounds %q %q not UTF-8", v, mn, mx)
		}
		k := statKey(v, limit)
		mn2, _ := boundMin(k, limit, text)
		mx2, _, ok2 := boundMax(k, limit, text)
		if !bytes.Equal(mn, mn2) || !bytes.Equal(mx, mx2) || ok != ok2 {
			t.Fatalf("%q: bounds of its key differ", v)
		}
	})
}
