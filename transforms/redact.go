package transforms

import (
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

var redactSpec = &Spec{
	Name:    "redact",
	Summary: "replace every non-NULL value with the same constant text; NULL stays NULL",
	Inputs:  []Kind{KindString},
	Params: []ParamSpec{{Name: "with", Kind: ParamString, Default: "[REDACTED]",
		Doc: "the text every value becomes (valid UTF-8, may be empty)"}},
	Result:  ResultRemoved,
	Example: "张三 → [REDACTED]",
	New: func(p Params, _ Env) (Transform, error) {
		w := p.String("with")
		if !utf8.ValidString(w) {
			return nil, fmt.Errorf("parameter %q is not valid UTF-8", "with")
		}
		return &redact{with: []byte(w)}, nil
	},
	Describe: func(p Params) string {
		return "the constant " + strconv.Quote(p.String("with")) + " where the source had a value, NULL where it had none"
	},
}

type redact struct{ with []byte }

func (r *redact) OutputType(in arrow.DataType) (arrow.DataType, error) {
	if err := checkKind("redact", in, KindString); err != nil {
		return nil, err
	}
	return arrow.BinaryTypes.String, nil
}

func (r *redact) Apply(mem memory.Allocator, in arrow.Array) (arrow.Array, error) {
	if _, err := r.OutputType(in.DataType()); err != nil {
		return nil, err
	}
	return mapStrings(mem, in, func(dst, _ []byte) ([]byte, bool) {
		return append(dst, r.with...), true
	})
}
