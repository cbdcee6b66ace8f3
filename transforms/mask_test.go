package transforms

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestMask(t *testing.T) {
	// one mask character per hidden character; at most keep_first+keep_last
	// characters: all masked; invalid bytes are one character, always masked
	long := strings.Repeat("很长", 1<<19) // 1 MiB of runes
	cases := []struct {
		params map[string]any
		in     *string
		want   *string
	}{
		{nil, sp("13812345678"), sp("138****5678")},
		{nil, nil, nil},
		{nil, sp(""), sp("")},
		{nil, sp("1234567"), sp("*******")},
		{nil, sp("12345678"), sp("123*5678")},
		{nil, sp("张三"), sp("**")},
		{nil, sp("欧阳娜娜是谁啊好"), sp("欧阳娜*是谁啊好")},
		{nil, sp("１３８１２３４５６７８"), sp("１３８****５６７８")},
		{nil, sp("\xff2345678901"), sp("*23****8901")},
		{nil, sp("1234\xfe5678901"), sp("123*****8901")}, // the invalid byte is hidden anyway
		{nil, sp("12345678\xfe901"), sp("123******901")}, // an invalid byte among the last four is masked
		{nil, sp("\xc3"), sp("*")},
		{nil, sp("\uFFFD2345678901"), sp("\uFFFD23****8901")}, // a valid U+FFFD is a character like any other
		{nil, sp("a.b@qq.com"), sp("a.b***.com")},
		{nil, sp(long), sp("很长很" + strings.Repeat("*", 1<<20-7) + "很长很长")},
		{map[string]any{"keep_first": int64(0), "keep_last": int64(0), "char": "＊"}, sp("张三丰"), sp("＊＊＊")},
		{map[string]any{"keep_first": int64(6), "keep_last": int64(4)}, sp("110105194912310021"), sp("110105********0021")},
		{map[string]any{"keep_first": int64(1), "keep_last": int64(0), "char": "x"}, sp("张三丰"), sp("张xx")},
		{map[string]any{"keep_first": int64(0), "keep_last": int64(4)}, sp("6222021234567890123"), sp("***************0123")},
	}
	for _, c := range cases {
		tr := bind(t, "mask", c.params)
		got := applyStrings(t, checkedMem(t), tr, []*string{c.in})
		if deref(got[0]) != deref(c.want) || (got[0] == nil) != (c.want == nil) {
			t.Errorf("mask %v %.40q = %.40q, want %.40q", c.params, deref(c.in), deref(got[0]), deref(c.want))
		}
	}
}

func TestMaskLongValueShape(t *testing.T) {
	// the 1 MiB edge value: first 3 and last 4 characters kept, one '*' per other character
	got := applyStrings(t, checkedMem(t), bind(t, "mask", nil), []*string{sp(megabyte)})
	r := []rune(megabyte)
	want := string(r[:3]) + strings.Repeat("*", len(r)-7) + string(r[len(r)-4:])
	if *got[0] != want {
		t.Errorf("1 MiB value masked wrongly (%d bytes, want %d)", len(*got[0]), len(want))
	}
}

func TestMaskParams(t *testing.T) {
	spec, _ := Lookup("mask")
	for _, c := range []struct {
		params map[string]any
		want   string
	}{
		{map[string]any{"char": "**"}, "exactly one character"},
		{map[string]any{"char": ""}, "exactly one character"},
		{map[string]any{"char": "\xff"}, "exactly one character"},
		{map[string]any{"keep_first": int64(-1)}, "between 0 and 64"},
		{map[string]any{"keep_last": int64(65)}, "between 0 and 64"},
	} {
		if _, _, err := spec.Bind(c.params, Env{}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want %q", c.params, err, c.want)
		}
	}
}

// FuzzMask checks the mask's promises on any input: the output is valid
// UTF-8 with one character per input character (invalid bytes counting
// one each); hidden characters and invalid bytes are the mask character;
// kept ones are the input's.
func FuzzMask(f *testing.F) {
	for _, s := range []string{"", "13812345678", "张三", "\xff\xfe invalid utf-8 \xc3", "１３８１２３４５６７８", "\uFFFD", "a"} {
		f.Add(s, uint8(3), uint8(4))
	}
	f.Fuzz(func(t *testing.T, s string, first, last uint8) {
		kf, kl := int(first%10), int(last%10)
		tr := bind(t, "mask", map[string]any{"keep_first": int64(kf), "keep_last": int64(kl), "char": "#"})
		got := applyStrings(t, checkedMem(t), tr, []*string{&s})
		out := *got[0]
		if !utf8.ValidString(out) {
			t.Fatalf("invalid UTF-8 out of %q: %q", s, out)
		}
		var in []string // the input's characters, an invalid byte as one
		for rest := s; len(rest) > 0; {
			r, size := utf8.DecodeRuneInString(rest)
			if r == utf8.RuneError && size == 1 {
				in = append(in, "")
			} else {
				in = append(in, rest[:size])
			}
			rest = rest[size:]
		}
		outR := []rune(out)
		if len(outR) != len(in) {
			t.Fatalf("%q: %d characters out of %d", s, len(outR), len(in))
		}
		all := len(in) <= kf+kl
		for i, c := range in {
			keep := !all && (i < kf || i >= len(in)-kl) && c != ""
			if keep && string(outR[i]) != c {
				t.Fatalf("%q: kept character %d is %q, want %q", s, i, string(outR[i]), c)
			}
			if !keep && outR[i] != '#' {
				t.Fatalf("%q: character %d is %q, want the mask", s, i, string(outR[i]))
			}
		}
	})
}
