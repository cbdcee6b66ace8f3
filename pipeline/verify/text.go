package verify

import (
	"slices"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// This file holds the reading of values as text: strings and binary as
// their bytes, integers as decimal text, dictionaries once per row.

// eachText calls fn with the text of every non-NULL value of a string,
// binary or integer array, or of a dictionary of those, once per row
// (integers as decimal text); other types have no text to check. fn must
// not keep the bytes: they are the array's own.
func eachText(a arrow.Array, fn func([]byte)) {
	if d, ok := a.(*array.Dictionary); ok {
		texts, has := dictionaryTexts(d.Dictionary())
		for i := 0; i < d.Len(); i++ {
			if d.IsValid(i) && has[d.GetValueIndex(i)] {
				fn(texts[d.GetValueIndex(i)])
			}
		}
		return
	}
	eachTextIndexed(a, func(_ int, v []byte) { fn(v) })
}

// dictionaryTexts returns the text of each entry of dict and whether it
// has one (not for a NULL entry, or a type without text); integers' texts
// are copies, the others the array's own bytes.
func dictionaryTexts(dict arrow.Array) ([][]byte, []bool) {
	texts, has := make([][]byte, dict.Len()), make([]bool, dict.Len())
	id := dict.DataType().ID()
	copies := id == arrow.INT64 || id == arrow.INT32
	eachTextIndexed(dict, func(i int, v []byte) {
		if copies {
			v = slices.Clone(v)
		}
		texts[i], has[i] = v, true
	})
	return texts, has
}

// eachTextIndexed calls fn with the index and text of every non-NULL value
// of a string, binary or integer array (integers as decimal text, in a
// buffer reused from call to call).
func eachTextIndexed(a arrow.Array, fn func(i int, v []byte)) {
	var tmp []byte
	switch a := a.(type) {
	case *array.String, *array.LargeString, *array.Binary:
		eachIndexed(a, fn)
	case *array.Int64:
		for i := 0; i < a.Len(); i++ {
			if a.IsValid(i) {
				tmp = strconv.AppendInt(tmp[:0], a.Value(i), 10)
				fn(i, tmp)
			}
		}
	case *array.Int32:
		for i := 0; i < a.Len(); i++ {
			if a.IsValid(i) {
				tmp = strconv.AppendInt(tmp[:0], int64(a.Value(i)), 10)
				fn(i, tmp)
			}
		}
	}
}

// hasText reports whether eachText finds text in arrays of type t.
func hasText(t arrow.DataType) bool {
	if d, ok := t.(*arrow.DictionaryType); ok {
		t = d.ValueType
	}
	switch t.ID() {
	case arrow.STRING, arrow.LARGE_STRING, arrow.BINARY, arrow.INT64, arrow.INT32:
		return true
	}
	return false
}

// eachIndexed calls fn with the row and bytes of every non-NULL value of a
// string, large string or binary array, without copying them.
func eachIndexed(a arrow.Array, fn func(i int, v []byte)) {
	switch a := a.(type) {
	case *array.String:
		data, offs := a.ValueBytes(), a.ValueOffsets()
		for i := 0; i < a.Len(); i++ {
			if a.IsValid(i) {
				fn(i, data[offs[i]-offs[0]:offs[i+1]-offs[0]])
			}
		}
	case *array.LargeString:
		data, offs := a.ValueBytes(), a.ValueOffsets()
		for i := 0; i < a.Len(); i++ {
			if a.IsValid(i) {
				fn(i, data[offs[i]-offs[0]:offs[i+1]-offs[0]])
			}
		}
	case *array.Binary:
		for i := 0; i < a.Len(); i++ {
			if a.IsValid(i) {
				fn(i, a.Value(i))
			}
		}
	}
}
