package transforms

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// byteStrings gives allocation-free access to the values of a plain
// string-like array (utf8, large utf8, binary, large binary).
type byteStrings struct {
	arr  arrow.Array
	o32  []int32
	o64  []int64
	data []byte
}

func newByteStrings(a arrow.Array) (byteStrings, bool) {
	switch a := a.(type) {
	case *array.String:
		return byteStrings{arr: a, o32: a.ValueOffsets(), data: a.ValueBytes()}, true
	case *array.LargeString:
		return byteStrings{arr: a, o64: a.ValueOffsets(), data: a.ValueBytes()}, true
	case *array.Binary:
		return byteStrings{arr: a, o32: a.ValueOffsets(), data: a.ValueBytes()}, true
	case *array.LargeBinary:
		return byteStrings{arr: a, o64: a.ValueOffsets(), data: a.ValueBytes()}, true
	}
	return byteStrings{}, false
}

// at returns value i. ValueBytes starts at the first value's offset, so the
// offsets are rebased on it.
func (b *byteStrings) at(i int) []byte {
	if b.o32 != nil {
		base := b.o32[0]
		return b.data[b.o32[i]-base : b.o32[i+1]-base]
	}
	base := b.o64[0]
	return b.data[b.o64[i]-base : b.o64[i+1]-base]
}

func (b *byteStrings) totalBytes() int { return len(b.data) }

// stringBuilder builds a utf8 array of a known length directly into
// allocator-owned buffers, without per-value allocation.
type stringBuilder struct {
	mem     memory.Allocator
	n       int // values appended so far
	nulls   int
	offsets *memory.Buffer
	off     []int32
	data    *memory.Buffer
	buf     []byte // data bytes written so far (aliases data's memory)
	valid   *memory.Buffer
	bits    []byte
	err     error
}

func newStringBuilder(mem memory.Allocator, length, dataHint int) *stringBuilder {
	b := &stringBuilder{mem: mem}
	b.offsets = memory.NewResizableBuffer(mem)
	b.offsets.Resize((length + 1) * arrow.Int32SizeBytes)
	b.off = arrow.Int32Traits.CastFromBytes(b.offsets.Bytes())
	b.off[0] = 0
	b.data = memory.NewResizableBuffer(mem)
	if dataHint < 64 {
		dataHint = 64
	}
	b.data.Reserve(dataHint)
	b.buf = b.data.Buf()[:0]
	b.valid = memory.NewResizableBuffer(mem)
	b.valid.Resize(int(bitutil.BytesForBits(int64(length))))
	b.bits = b.valid.Bytes()
	clear(b.bits)
	return b
}

// grow makes room for n more data bytes.
func (b *stringBuilder) grow(n int) {
	need := len(b.buf) + n
	if need <= cap(b.buf) {
		return
	}
	if need > math.MaxInt32 {
		if b.err == nil {
			b.err = fmt.Errorf("output column exceeds 2 GiB in one batch; use a smaller batch size")
		}
		return
	}
	used := len(b.buf)
	b.data.Reserve(max(2*cap(b.buf), need))
	b.buf = b.data.Buf()[:used]
}

// appendBytes adds one valid value.
func (b *stringBuilder) appendBytes(v []byte) {
	b.grow(len(v))
	if b.err != nil {
		return
	}
	b.buf = append(b.buf, v...)
	bitutil.SetBit(b.bits, b.n)
	b.n++
	b.off[b.n] = int32(len(b.buf))
}

// appendMapped adds fn's output for v; fn appends it to the buffer it is
// given and reports false for NULL.
func (b *stringBuilder) appendMapped(fn stringFunc, v []byte) {
	if b.err != nil {
		return
	}
	start := len(b.buf)
	out, ok := fn(b.buf, v)
	if !ok {
		b.appendNull()
		return
	}
	if len(out) > math.MaxInt32 {
		b.err = fmt.Errorf("output column exceeds 2 GiB in one batch; use a smaller batch size")
		return
	}
	if cap(out) != cap(b.buf) {
		// fn outgrew the buffer and append moved the bytes to Go memory:
		// copy them back into the allocator's buffer.
		v := out[start:]
		b.buf = b.buf[:start]
		b.grow(len(v))
		if b.err != nil {
			return
		}
		b.buf = append(b.buf, v...)
	} else {
		b.buf = out
	}
	bitutil.SetBit(b.bits, b.n)
	b.n++
	b.off[b.n] = int32(len(b.buf))
}

// appendCopy adds a copy of the output value j already appended.
func (b *stringBuilder) appendCopy(j int) {
	if !bitutil.BitIsSet(b.bits, j) {
		b.appendNull()
		return
	}
	s, e := int(b.off[j]), int(b.off[j+1])
	b.grow(e - s)
	if b.err != nil {
		return
	}
	b.buf = append(b.buf, b.buf[s:e]...)
	bitutil.SetBit(b.bits, b.n)
	b.n++
	b.off[b.n] = int32(len(b.buf))
}

func (b *stringBuilder) appendNull() {
	b.nulls++
	b.n++
	b.off[b.n] = int32(len(b.buf))
}

// release frees the buffers after an error.
func (b *stringBuilder) release() {
	b.offsets.Release()
	b.data.Release()
	b.valid.Release()
}

// finish returns the built array; the builder must not be used afterwards.
func (b *stringBuilder) finish() (arrow.Array, error) {
	if b.err != nil {
		b.release()
		return nil, b.err
	}
	b.data.ResizeNoShrink(len(b.buf))
	valid := b.valid
	if b.nulls == 0 {
		valid.Release()
		valid = nil
	}
	d := array.NewData(arrow.BinaryTypes.String, b.n, []*memory.Buffer{valid, b.offsets, b.data}, nil, b.nulls, 0)
	out := array.NewStringData(d)
	d.Release()
	b.offsets.Release()
	b.data.Release()
	if valid != nil {
		valid.Release()
	}
	return out, nil
}

// stringFunc appends the transformed form of v to dst and reports false when
// the result is NULL.
type stringFunc func(dst, v []byte) ([]byte, bool)

// mapStrings applies fn to the values of a string-like array, plain or
// dictionary-encoded, and returns a dense utf8 array of the same length.
// NULL stays NULL. fn runs once per dictionary entry for dictionary input
// and once per value otherwise.
func mapStrings(mem memory.Allocator, in arrow.Array, fn stringFunc) (arrow.Array, error) {
	if d, ok := in.(*array.Dictionary); ok {
		return viaDictionary(mem, d, func(dict arrow.Array) (arrow.Array, error) { return mapStrings(mem, dict, fn) })
	}
	src, ok := newByteStrings(in)
	if !ok {
		return nil, fmt.Errorf("%w %s", ErrUnsupportedType, in.DataType())
	}
	n := in.Len()
	b := newStringBuilder(mem, n, src.totalBytes())
	for i := 0; i < n; i++ {
		if in.IsNull(i) {
			b.appendNull()
			continue
		}
		b.appendMapped(fn, src.at(i))
	}
	return b.finish()
}

// viaDictionary transforms a dictionary array's dictionary with apply,
// which returns utf8, and gathers the result densely, row by row.
func viaDictionary(mem memory.Allocator, d *array.Dictionary, apply func(arrow.Array) (arrow.Array, error)) (arrow.Array, error) {
	vals, err := apply(d.Dictionary())
	if err != nil {
		return nil, err
	}
	defer vals.Release()
	return gatherStrings(mem, vals.(*array.String), d)
}

// gatherStrings materializes a dictionary array whose (already transformed)
// dictionary is vals into a dense utf8 array.
func gatherStrings(mem memory.Allocator, vals *array.String, d *array.Dictionary) (arrow.Array, error) {
	n := d.Len()
	// estimate: average dictionary value length times rows
	hint := 64
	if vals.Len() > 0 {
		hint = len(vals.ValueBytes()) / vals.Len() * n
	}
	b := newStringBuilder(mem, n, hint)
	for i := 0; i < n; i++ {
		if d.IsNull(i) {
			b.appendNull()
			continue
		}
		j := d.GetValueIndex(i)
		if j < 0 || j >= vals.Len() {
			b.release()
			return nil, fmt.Errorf("dictionary index %d out of range [0, %d)", j, vals.Len())
		}
		if vals.IsNull(j) {
			b.appendNull()
			continue
		}
		b.appendBytes(unsafeBytes(vals.Value(j)))
	}
	return b.finish()
}

// unsafeString returns a string sharing b's memory; b must not change while
// the string is in use.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// unsafeBytes returns the bytes of s without copying; they must not be modified.
func unsafeBytes(s string) []byte {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice(unsafe.StringData(s), len(s))
}
