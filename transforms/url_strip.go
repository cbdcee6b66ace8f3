package transforms

import (
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

var urlStripSpec = &Spec{
	Name: "url_strip",
	Summary: "keep a URL up to its first '?' or '#': scheme, host and path survive, the query string and fragment " +
		"(where phone numbers, e-mails and tracking ids hide) do not; no decoding or normalization",
	Inputs:   []Kind{KindString},
	Result:   ResultGeneralized,
	Example:  "https://item.example.com/item.htm?id=1&mobile=13800138000 → https://item.example.com/item.htm",
	New:      func(Params, Env) (Transform, error) { return urlStrip{}, nil },
	Describe: func(Params) string { return "URL without query string and fragment (text before the first '?' or '#')" },
}

type urlStrip struct{}

func (urlStrip) OutputType(in arrow.DataType) (arrow.DataType, error) {
	if err := checkKind("url_strip", in, KindString); err != nil {
		return nil, err
	}
	return arrow.BinaryTypes.String, nil
}

func (u urlStrip) Apply(mem memory.Allocator, in arrow.Array) (arrow.Array, error) {
	if _, err := u.OutputType(in.DataType()); err != nil {
		return nil, err
	}
	return mapStrings(mem, in, stripURL)
}

// stripURL appends the longest prefix of v that holds neither '?' nor '#'.
func stripURL(dst, v []byte) ([]byte, bool) {
	for i, c := range v {
		if c == '?' || c == '#' {
			return append(dst, v[:i]...), true
		}
	}
	return append(dst, v...), true
}
