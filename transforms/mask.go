package transforms

import (
	"fmt"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

var maskSpec = &Spec{
	Name: "mask",
	Summary: "keep the first `keep_first` and last `keep_last` characters and replace each other character " +
		"with `char`; a value too short to hide anything (at most keep_first+keep_last characters) is masked " +
		"entirely; bytes that are not UTF-8 count as one character each and are always masked",
	Inputs: []Kind{KindString},
	Params: []ParamSpec{
		{Name: "keep_first", Kind: ParamInt, Default: int64(3), Min: 0, Max: 64, Doc: "leading characters kept"},
		{Name: "keep_last", Kind: ParamInt, Default: int64(4), Min: 0, Max: 64, Doc: "trailing characters kept"},
		{Name: "char", Kind: ParamString, Default: "*", Doc: "the mask character: exactly one character"},
	},
	Result:  ResultGeneralized,
	Example: "13812345678 → 138****5678; 1234567 → *******",
	New: func(p Params, _ Env) (Transform, error) {
		c := p.String("char")
		if !utf8.ValidString(c) || utf8.RuneCountInString(c) != 1 {
			return nil, fmt.Errorf("parameter %q must be exactly one character, got %q", "char", c)
		}
		return &mask{first: int(p.Int("keep_first")), last: int(p.Int("keep_last")), char: []byte(c)}, nil
	},
	Describe: func(p Params) string {
		return fmt.Sprintf("masked: the first %d and last %d characters of the source, the others each replaced by %q "+
			"(values of at most %d characters fully masked); the length in characters is kept",
			p.Int("keep_first"), p.Int("keep_last"), p.String("char"), p.Int("keep_first")+p.Int("keep_last"))
	},
}

type mask struct {
	first, last int
	char        []byte
}

func (m *mask) OutputType(in arrow.DataType) (arrow.DataType, error) {
	if err := checkKind("mask", in, KindString); err != nil {
		return nil, err
	}
	return arrow.BinaryTypes.String, nil
}

func (m *mask) Apply(mem memory.Allocator, in arrow.Array) (arrow.Array, error) {
	if _, err := m.OutputType(in.DataType()); err != nil {
		return nil, err
	}
	return mapStrings(mem, in, m.mask)
}

// mask appends the masked form of v. Characters are runes; an invalid UTF-8
// byte is one character and is masked even where characters are kept, so
// the output is valid UTF-8 and no byte passes through unread.
func (m *mask) mask(dst, v []byte) ([]byte, bool) {
	n := utf8.RuneCount(v)
	if n <= m.first+m.last {
		for range n {
			dst = append(dst, m.char...)
		}
		return dst, true
	}
	hideFrom, hideTo := m.first, n-m.last // rune indexes [hideFrom, hideTo) are hidden
	for k := 0; len(v) > 0; k++ {
		size := 1
		valid := v[0] < utf8.RuneSelf
		if !valid {
			var r rune
			r, size = utf8.DecodeRune(v)
			valid = r != utf8.RuneError || size > 1
		}
		if valid && (k < hideFrom || k >= hideTo) {
			dst = append(dst, v[:size]...)
		} else {
			dst = append(dst, m.char...)
		}
		v = v[size:]
	}
	return dst, true
}
