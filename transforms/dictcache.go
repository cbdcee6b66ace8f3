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

	// LazyAbove, when positive, is the dictionary size past which the
	// cache transforms entries lazily (see lazyEntries) instead of whole.
	LazyAbove int
	lazy      lazyEntries
}

// lazyEntries transforms the entries of a large dictionary only as batches
// use them, each once: a column chunk's dictionary of 250,000 device ids or
// 600,000 addresses would cost more to transform whole than the rows of a
// retention sweep that keeps a quarter of them, and read densely each row's
// value would be copied out of it.
//
// The results are appended, in the order batches first use them, to Go
// slices that are never written below their length: each batch's output is
// a dictionary array whose dictionary views the results so far, so every
// batch of a column chunk gets a dictionary that begins with the previous
// batch's entries, in the same memory. A Parquet writer can tell the
// dictionary grew (parquetio's fastColumn.useInputDict) and keep what it
// learned about its entries instead of hashing every row's value again. A
// new input dictionary starts new slices, since the writer may still hold
// the old ones.
type lazyEntries struct {
	dict arrow.ArrayData // the input dictionary, retained; nil when unused
	memo []int32         // entry → index in offs, or lazyUnseen, lazyNull
	offs []int32         // transformed values: data[offs[k]:offs[k+1]]
	data []byte
	// Transformed counts the entries transformed, for tests.
	Transformed int
}

const (
	lazyUnseen  = -1
	lazyNull    = -2
	lazyPending = -3
)

// Apply transforms the dictionary array in with tr, reusing the previous
// dictionary's result when in's dictionary has the same values. A
// dictionary of more than LazyAbove entries is transformed lazily, for a
// transform LazyCapable of it (see lazyEntries). Either way the result is a
// dictionary array with int32 indices.
func (c *DictionaryCache) Apply(mem memory.Allocator, tr Transform, in *array.Dictionary) (arrow.Array, error) {
	dict := in.Dictionary()
	if c.LazyAbove > 0 && dict.Len() > c.LazyAbove && in.Indices().DataType().ID() == arrow.INT32 && LazyCapable(tr, dict.DataType()) {
		return c.lazy.apply(mem, tr, in)
	}
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
	if nulls == 0 {
		valid.Release()
		valid = nil
	}
	return newDictionary(n, nulls, valid, idx, c.out), nil
}

// newDictionary returns a dictionary array of n rows with the int32
// indices in idx, null where validity (nil: none) says, into values. It
// takes over idx and validity.
func newDictionary(n, nulls int, validity, idx *memory.Buffer, values arrow.Array) arrow.Array {
	indices := array.NewData(arrow.PrimitiveTypes.Int32, n, []*memory.Buffer{validity, idx}, nil, nulls, 0)
	idx.Release()
	if validity != nil {
		validity.Release()
	}
	defer indices.Release()
	ia := array.MakeFromData(indices)
	defer ia.Release()
	dt := &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: values.DataType()}
	return array.NewDictionaryArray(dt, ia, values)
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

// LazyCapable reports whether a DictionaryCache can transform a dictionary
// of the given value type with tr lazily: tr maps values independently and
// gives utf8, and the values are strings or binary.
func LazyCapable(tr Transform, valueType arrow.DataType) bool {
	if _, subject := tr.(SubjectAware); subject {
		return false
	}
	out, err := tr.OutputType(valueType)
	if err != nil || out.ID() != arrow.STRING {
		return false
	}
	switch valueType.ID() {
	case arrow.STRING, arrow.BINARY, arrow.LARGE_STRING, arrow.LARGE_BINARY:
		return true
	}
	return false
}

// apply transforms the entries of in's dictionary that in uses and that
// were not transformed since the dictionary was first seen, then indexes
// every row's value in the results.
func (l *lazyEntries) apply(mem memory.Allocator, tr Transform, in *array.Dictionary) (arrow.Array, error) {
	dict := in.Dictionary()
	if l.dict != dict.Data() {
		l.reset()
		l.dict = dict.Data()
		l.dict.Retain()
		if cap(l.memo) < dict.Len() {
			l.memo = make([]int32, dict.Len())
		}
		l.memo = l.memo[:dict.Len()]
		for i := range l.memo {
			l.memo[i] = lazyUnseen
		}
		// new slices: batches already handed out view the old ones
		l.offs = make([]int32, 1, dict.Len()+1)
		l.data = nil
	}
	n := in.Len()
	idx := in.Indices().(*array.Int32).Int32Values()
	var pending []int
	for i, e := range idx {
		if in.IsNull(i) {
			continue
		}
		if e < 0 || int(e) >= len(l.memo) {
			return nil, fmt.Errorf("dictionary index %d out of range [0, %d)", e, len(l.memo))
		}
		if l.memo[e] == lazyUnseen {
			l.memo[e] = lazyPending
			pending = append(pending, int(e))
		}
	}
	if len(pending) > 0 {
		if err := l.transform(mem, tr, dict, pending); err != nil {
			return nil, err
		}
	}
	ib := memory.NewResizableBuffer(mem)
	ib.Resize(n * arrow.Int32SizeBytes)
	dst := arrow.Int32Traits.CastFromBytes(ib.Bytes())
	var vb *memory.Buffer
	var bits []byte
	nulls := 0
	for i, e := range idx {
		k := int32(lazyNull)
		if !in.IsNull(i) {
			k = l.memo[e]
		}
		if k >= 0 {
			dst[i] = k
			continue
		}
		if vb == nil {
			vb = memory.NewResizableBuffer(mem)
			vb.Resize(int(bitutil.BytesForBits(int64(n))))
			bits = vb.Bytes()
			bitutil.SetBitsTo(bits, 0, int64(n), true)
		}
		dst[i] = 0
		bitutil.ClearBit(bits, i)
		nulls++
	}
	// the results so far, without a copy (see lazyEntries)
	values := array.NewData(arrow.BinaryTypes.String, len(l.offs)-1, []*memory.Buffer{nil,
		memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(l.offs)), memory.NewBufferBytes(l.data)}, nil, 0, 0)
	defer values.Release()
	va := array.MakeFromData(values)
	defer va.Release()
	return newDictionary(n, nulls, vb, ib, va), nil
}

// transform runs tr on the pending entries of dict and records the results.
func (l *lazyEntries) transform(mem memory.Allocator, tr Transform, dict arrow.Array, pending []int) error {
	src, _ := newByteStrings(dict)
	total := 0
	for _, e := range pending {
		total += len(src.at(e))
	}
	b := newStringBuilder(mem, len(pending), total)
	for _, e := range pending {
		if dict.IsNull(e) {
			b.appendNull()
		} else {
			b.appendBytes(src.at(e))
		}
	}
	vals, err := b.finish()
	if err != nil {
		return err
	}
	defer vals.Release()
	out, err := tr.Apply(mem, vals)
	if err != nil {
		return err
	}
	defer out.Release()
	res, ok := out.(*array.String)
	if !ok || res.Len() != len(pending) {
		return fmt.Errorf("a lazily transformed dictionary gave %s of %d values for %d", out.DataType(), out.Len(), len(pending))
	}
	l.Transformed += len(pending)
	l.reserve(res, len(pending))
	for j, e := range pending {
		if res.IsNull(j) {
			l.memo[e] = lazyNull
			continue
		}
		l.memo[e] = int32(len(l.offs) - 1)
		l.data = append(l.data, res.Value(j)...)
		l.offs = append(l.offs, int32(len(l.data)))
	}
	return nil
}

// reserve makes room in data for res, the results of m entries: enough for
// the whole dictionary at their average length, so that data rarely moves
// (a move makes a writer treat the next batch's dictionary as a new one).
func (l *lazyEntries) reserve(res *array.String, m int) {
	add := len(res.ValueBytes())
	if len(l.data)+add <= cap(l.data) {
		return
	}
	seen := len(l.offs) - 1 + m
	want := len(l.data) + add
	if left := len(l.memo) - seen; left > 0 && seen > 0 {
		want += int(int64(want) * int64(left) / int64(seen))
	}
	want = max(want, 2*cap(l.data))
	data := make([]byte, len(l.data), want)
	copy(data, l.data)
	l.data = data
}

// reset drops the dictionary.
func (l *lazyEntries) reset() {
	if l.dict != nil {
		l.dict.Release()
		l.dict = nil
	}
}

// Release frees the cached dictionaries.
func (c *DictionaryCache) Release() {
	c.lazy.reset()
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
