package transforms

import (
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

var keepSpec = &Spec{
	Name:     "keep",
	Summary:  "pass the value through unchanged (only for columns whose semantic type allows it)",
	Result:   ResultRaw,
	Example:  "杭州市 → 杭州市",
	New:      func(Params, Env) (Transform, error) { return keep{}, nil },
	Describe: func(Params) string { return "unchanged from the source" },
}

// keep is the identity transform.
type keep struct{}

func (keep) OutputType(in arrow.DataType) (arrow.DataType, error) { return in, nil }

func (keep) Apply(_ memory.Allocator, in arrow.Array) (arrow.Array, error) {
	in.Retain()
	return in, nil
}

var dropSpec = &Spec{
	Name:     "drop",
	Summary:  "leave the column out of the output",
	Drops:    true,
	Result:   ResultRemoved,
	Example:  "13800138000 → (no column)",
	Describe: func(Params) string { return "not in the output" },
}
