package verify

import (
	"fmt"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// TestEachText: the text of every non-NULL value, once per row, whatever
// the array: strings (empty, invalid UTF-8), binary, integers as decimal
// text, and dictionaries of each (NULL rows and NULL entries left out);
// nothing from a type without text. eachUsed gives each entry that rows
// refer to once, with its count of rows, for integer dictionaries too.
func TestEachText(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	str := func(vs ...any) arrow.Array {
		b := array.NewStringBuilder(mem)
		defer b.Release()
		for _, v := range vs {
			if v == nil {
				b.AppendNull()
			} else {
				b.Append(v.(string))
			}
		}
		return b.NewArray()
	}
	i64 := func(vs ...any) arrow.Array {
		b := array.NewInt64Builder(mem)
		defer b.Release()
		for _, v := range vs {
			if v == nil {
				b.AppendNull()
			} else {
				b.Append(int64(v.(int)))
			}
		}
		return b.NewArray()
	}
	dict := func(d arrow.Array, idx ...any) arrow.Array {
		ib := array.NewInt32Builder(mem)
		defer ib.Release()
		for _, i := range idx {
			if i == nil {
				ib.AppendNull()
			} else {
				ib.Append(int32(i.(int)))
			}
		}
		ia := ib.NewArray()
		defer ia.Release()
		defer d.Release()
		return array.NewDictionaryArray(&arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: d.DataType()}, ia, d)
	}
	i32 := array.NewInt32Builder(mem)
	i32.AppendValues([]int32{-7, 0, 2147483647}, nil)
	f64 := array.NewFloat64Builder(mem)
	f64.AppendValues([]float64{1.5}, nil)
	bin := array.NewBinaryBuilder(mem, arrow.BinaryTypes.Binary)
	bin.AppendValues([][]byte{{0xff, 0xfe}, {}}, nil)
	bin.AppendNull()
	cases := []struct {
		name string
		a    arrow.Array
		want []string
		used map[string]int64 // eachUsed, for dictionaries
	}{
		{"strings", str("13800138000", nil, "", "\xff\xfe", "天气"), []string{"13800138000", "", "\xff\xfe", "天气"}, nil},
		{"binary", bin.NewArray(), []string{"\xff\xfe", ""}, nil},
		{"int64", i64(1000000003, nil, -9223372036854775808), []string{"1000000003", "-9223372036854775808"}, nil},
		{"int32", i32.NewArray(), []string{"-7", "0", "2147483647"}, nil},
		{"float64", f64.NewArray(), nil, nil},
		{"empty", str(), nil, nil},
		{"string dictionary", dict(str("a", "", nil, "b"), 0, 1, 0, nil, 2, 3, 0), []string{"a", "", "a", "b", "a"}, map[string]int64{"a": 3, "": 1, "b": 1}},
		{"int64 dictionary", dict(i64(1000000003, 42), 1, 0, 1, nil, 1), []string{"42", "1000000003", "42", "42"}, map[string]int64{"42": 3, "1000000003": 1}},
		{"unused entries", dict(str("x", "y", "z"), 2, 2), []string{"z", "z"}, map[string]int64{"z": 2}},
	}
	i32.Release()
	f64.Release()
	bin.Release()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			defer c.a.Release()
			var got []string
			eachText(c.a, func(v []byte) { got = append(got, string(v)) })
			if !slices.Equal(got, c.want) {
				t.Errorf("eachText %q, want %q", got, c.want)
			}
			if d, ok := c.a.(*array.Dictionary); ok {
				used := map[string]int64{}
				eachUsed(d, nil, func(v []byte, n int64) { used[string(v)] += n })
				if fmt.Sprint(used) != fmt.Sprint(c.used) {
					t.Errorf("eachUsed %v, want %v", used, c.used)
				}
			}
		})
	}
}
