package transforms

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// DictionaryCache applies a transform to dictionary-encoded batches that
// share one dictionary, as the batches of one Parquet column chunk do: the
// dictionary is transformed once and de-duplicated, and each batch only has
// its indices remapped. The result is dictionary-encoded (int32 indices, a
// dictionary of distinct non-NULL values), so a Parquet writer can store the
// indices without hashing every value again.
//
// A DictionaryCache serves one column in one goroutine; Release frees it.
// It is only valid for transforms that map each value independently of the
// others: every transform in the registry but the SubjectAware ones (whose
// Apply fails, so a cache cannot be filled with them by mistake).
type DictionaryCache struct {
	in    arrow.Array // the input dictionary the cache holds, retained
	out   arrow.Array // its transformed, de-duplicated dictionary
	remap []int32     // input dictionary index → index in out, or -1 for NULL
	// Transformed counts the dictionaries transformed, for tests.
	Transformed int
}

// Apply transforms the dictionary array in with tr, reusing the previous
// dictionary's result when in's dictionary has the same values.
func (c *DictionaryCache) Apply(mem memory.Allocator, tr Transform, in *array.Dictionary) (arrow.Array, error) {
	dict := in.Dictionary()
	if c.in == nil || !array.Equal(c.in, dict) {
		if err := c.prepare(mem, tr, dict); err != nil {
			return nil, err
		}
	}
	n := in.Len()
	idx := memory.NewResizableBuffer(mem)
	idx.Resize(n * arrow.Int32SizeBytes)
	dst := arrow.Int32Traits.CastFromBytes(idx.Bytes())
	valid := memory.NewResizableBuffer(mem)
	valid.Resize(int(bitutil.BytesForBits(int64(n))))
	bits := valid.Bytes()
	clear(bits)
	nulls := 0
	for i := 0; i < n; i++ {
		if in.IsNull(i) {
			dst[i] = 0
			nulls++
			continue
		}
		j := in.GetValueIndex(i)
		if j < 0 || j >= len(c.remap) {
			idx.Release()
			valid.Release()
			return nil, fmt.Errorf("dictionary index %d out of range [0, %d)", j, len(c.remap))
		}
		k := c.remap[j]
		if k < 0 {
			dst[i] = 0
			nulls++
			continue
		}
		dst[i] = k
		bitutil.SetBit(bits, i)
	}
	var validity *memory.Buffer = valid
	if nulls == 0 {
		valid.Release()
		validity = nil
	}
	indices := array.NewData(arrow.PrimitiveTypes.Int32, n, []*memory.Buffer{validity, idx}, nil, nulls, 0)
	idx.Release()
	if validity != nil {
		validity.Release()
	}
	defer indices.Release()
	ia := array.MakeFromData(indices)
	defer ia.Release()
	dt := &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: c.out.DataType()}
	return array.NewDictionaryArray(dt, ia, c.out), nil
}

// prepare transforms and de-duplicates a new dictionary.
func (c *DictionaryCache) prepare(mem memory.Allocator, tr Transform, dict arrow.Array) error {
	c.Release()
	out, err := tr.Apply(mem, dict)
	if err != nil {
		return err
	}
	defer out.Release()
	c.Transformed++
	c.remap = make([]int32, dict.Len())
	switch o := out.(type) {
	case *array.String:
		src, _ := newByteStrings(o)
		b := newStringBuilder(mem, 0, 0)
		first := make(map[string]int32, o.Len())
		var uniq []int // positions in out of the distinct values, in first-seen order
		for i := 0; i < o.Len(); i++ {
			if o.IsNull(i) {
				c.remap[i] = -1
				continue
			}
			v := unsafeString(src.at(i))
			k, ok := first[v]
			if !ok {
				k = int32(len(uniq))
				first[v] = k
				uniq = append(uniq, i)
			}
			c.remap[i] = k
		}
		b.release()
		b = newStringBuilder(mem, len(uniq), len(src.data))
		for _, i := range uniq {
			b.appendBytes(src.at(i))
		}
		c.out, err = b.finish()
		if err != nil {
			return err
		}
	default:
		// a non-string result is kept as transformed, without de-duplication
		for i := range c.remap {
			c.remap[i] = int32(i)
			if out.IsNull(i) {
				c.remap[i] = -1
			}
		}
		out.Retain()
		c.out = out
	}
	dict.Retain()
	c.in = dict
	return nil
}

// Release frees the cached dictionaries.
func (c *DictionaryCache) Release() {
	if c.in != nil {
		c.in.Release()
		c.in = nil
	}
	if c.out != nil {
		c.out.Release()
		c.out = nil
	}
	c.remap = nil
}
