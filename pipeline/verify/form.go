package verify

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/deidproject/deid/transforms"
)

// This file holds the pseudonym check: every value of a column the policy
// pseudonymizes is of the form its transform declares.

// formMisses counts, in one row group, the values of a column that are not
// of the form its transform writes, and where the first one is.
type formMisses struct {
	n     int64
	first int64 // row of the file, from 0
	size  int   // the first one's length in bytes; -1 when the column is not text
}

func (m *formMisses) miss(row int64, size int) {
	if m.n == 0 {
		m.first, m.size = row, size
	}
	m.n++
}

// check adds the non-NULL values of a (rows base on of the file) that are
// not of form. A column of a type other than text holds no value of the
// form, whatever its values.
func (m *formMisses) check(a arrow.Array, form transforms.OutputForm, base int64) {
	switch a := a.(type) {
	case *array.Dictionary:
		dict := a.Dictionary()
		var sizes []int // per dictionary entry: -2 when of the form, else its size
		switch d := dict.(type) {
		case *array.String, *array.LargeString, *array.Binary:
			sizes = make([]int, dict.Len())
			eachIndexed(d, func(i int, v []byte) {
				sizes[i] = len(v)
				if form.HasForm(v) {
					sizes[i] = -2
				}
			})
		}
		for i := 0; i < a.Len(); i++ {
			if !a.IsValid(i) {
				continue
			}
			if sizes == nil {
				m.miss(base+int64(i), -1)
			} else if sz := sizes[a.GetValueIndex(i)]; sz != -2 {
				m.miss(base+int64(i), sz)
			}
		}
	case *array.String, *array.LargeString, *array.Binary:
		eachIndexed(a, func(i int, v []byte) {
			if !form.HasForm(v) {
				m.miss(base+int64(i), len(v))
			}
		})
	default:
		for i := 0; i < a.Len(); i++ {
			if a.IsValid(i) {
				m.miss(base+int64(i), -1)
			}
		}
	}
}

// message says what the misses are, never what the values are (a raw
// identifier, as likely as not): their count, the form, the first one's
// row and length.
func (m *formMisses) message(form transforms.OutputForm, typ arrow.DataType) string {
	if m.size < 0 {
		return fmt.Sprintf("%d values of type %s where the policy writes pseudonyms (%s), the first at row %d of the file (from 0)", m.n, typ, form.Form(), m.first)
	}
	return fmt.Sprintf("%d values not of the pseudonym's form (%s), the first at row %d of the file (from 0), of %d bytes", m.n, form.Form(), m.first, m.size)
}
