package transforms

import (
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// filterFast returns the rows of a that keep selects, for the types a run
// filters most (strings and binaries with 32-bit offsets, fixed-width
// numbers and times, and dictionaries of those), or false for any other
// type. It sizes every output buffer exactly before copying, and copies
// runs of kept rows at once: Arrow's compute filter grows its string
// buffers by doubling, which measured as most of a run's filtering cost.
func filterFast(mem memory.Allocator, a arrow.Array, keep []bool, kept int) (arrow.Array, bool) {
	switch a := a.(type) {
	case *array.Dictionary:
		idx, ok := filterFast(mem, a.Indices(), keep, kept)
		if !ok {
			return nil, false
		}
		defer idx.Release()
		return array.NewDictionaryArray(a.DataType(), idx, a.Dictionary()), true
	case *array.String:
		return filterOffsets(mem, a, a.ValueOffsets(), keep, kept), true
	case *array.Binary:
		return filterOffsets(mem, a, a.ValueOffsets(), keep, kept), true
	}
	fw, ok := a.DataType().(arrow.FixedWidthDataType)
	if !ok || fw.BitWidth()%8 != 0 || a.DataType().ID() == arrow.BOOL || len(a.Data().Buffers()) != 2 {
		return nil, false
	}
	width := fw.BitWidth() / 8
	src := a.Data().Buffers()[1].Bytes()[a.Data().Offset()*width:]
	vals := memory.NewResizableBuffer(mem)
	vals.Resize(kept * width)
	out := vals.Bytes()
	n := 0
	eachRun(keep, func(i, j int) {
		n += copy(out[n:], src[i*width:j*width])
	})
	validity, nulls := filterValidity(mem, a, keep, kept)
	data := array.NewData(a.DataType(), kept, []*memory.Buffer{validity, vals}, nil, nulls, 0)
	defer data.Release()
	vals.Release()
	if validity != nil {
		validity.Release()
	}
	return array.MakeFromData(data), true
}

// filterOffsets filters a string or binary array with 32-bit offsets
// (offs are the array's own, len+1 of them, absolute in its data buffer).
func filterOffsets(mem memory.Allocator, a arrow.Array, offs []int32, keep []bool, kept int) arrow.Array {
	var size int
	eachRun(keep, func(i, j int) { size += int(offs[j] - offs[i]) })
	var src []byte
	if b := a.Data().Buffers()[2]; b != nil { // nil when every value is empty
		src = b.Bytes()
	}
	offBuf := memory.NewResizableBuffer(mem)
	offBuf.Resize((kept + 1) * arrow.Int32SizeBytes)
	outOffs := arrow.Int32Traits.CastFromBytes(offBuf.Bytes())
	dataBuf := memory.NewResizableBuffer(mem)
	dataBuf.Resize(size)
	out := dataBuf.Bytes()
	var pos int32
	k := 0
	eachRun(keep, func(i, j int) {
		base := offs[i]
		for r := i; r < j; r++ {
			outOffs[k] = pos + offs[r] - base
			k++
		}
		pos += int32(copy(out[pos:], src[base:offs[j]]))
	})
	outOffs[k] = pos
	validity, nulls := filterValidity(mem, a, keep, kept)
	data := array.NewData(a.DataType(), kept, []*memory.Buffer{validity, offBuf, dataBuf}, nil, nulls, 0)
	defer data.Release()
	offBuf.Release()
	dataBuf.Release()
	if validity != nil {
		validity.Release()
	}
	return array.MakeFromData(data)
}

// filterValidity returns the validity bitmap of the kept rows and their
// null count; nil when none of a's rows is null.
func filterValidity(mem memory.Allocator, a arrow.Array, keep []bool, kept int) (*memory.Buffer, int) {
	if a.NullN() == 0 {
		return nil, 0
	}
	buf := memory.NewResizableBuffer(mem)
	buf.Resize(int(bitutil.BytesForBits(int64(kept))))
	bits := buf.Bytes()
	for i := range bits {
		bits[i] = 0
	}
	k, nulls := 0, 0
	for i, ok := range keep {
		if !ok {
			continue
		}
		if a.IsValid(i) {
			bitutil.SetBit(bits, k)
		} else {
			nulls++
		}
		k++
	}
	return buf, nulls
}

// eachRun calls fn(i, j) for every maximal run keep[i:j] of kept rows, in
// order.
func eachRun(keep []bool, fn func(i, j int)) {
	for i := 0; i < len(keep); {
		if !keep[i] {
			i++
			continue
		}
		j := i + 1
		for j < len(keep) && keep[j] {
			j++
		}
		fn(i, j)
		i = j
	}
}
