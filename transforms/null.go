package transforms

import (
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

var nullSpec = &Spec{
	Name: "null",
	Summary: "keep the column but make every value NULL: the output has the column's type (a dictionary " +
		"column's value type), so a schema that expects the column still gets it",
	Result:   ResultRemoved,
	Example:  "13800138000 → NULL",
	New:      func(Params, Env) (Transform, error) { return nullify{}, nil },
	Describe: func(Params) string { return "always NULL: the source values are not in the output" },
}

// nullify is the null transform.
type nullify struct{}

func (nullify) OutputType(in arrow.DataType) (arrow.DataType, error) {
	if d, ok := in.(*arrow.DictionaryType); ok {
		return d.ValueType, nil
	}
	return in, nil
}

func (n nullify) Apply(mem memory.Allocator, in arrow.Array) (arrow.Array, error) {
	t, _ := n.OutputType(in.DataType())
	return array.MakeArrayOfNull(mem, t, in.Len()), nil
}
