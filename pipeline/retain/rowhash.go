package retain

import (
	"encoding/binary"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/zeebo/xxh3"
)

// This file holds the row hashes the subset check compares (subset.go):
// 64 bits of xxh3 over a row's values, the values taken a column at a
// time.

// rowHash is a row's 64-bit hash. The subset check asks only whether a
// new row is one of the published rows: a row that is not passes only if
// its hash equals one of theirs by chance, about n/2^64 for n published
// rows (5e-13 for ten million), while equal rows always hash alike. So 64
// bits serve, at 8 bytes a row.
type rowHash uint64

// cellBytes is the room of one value in a row's hashed bytes: a flag
// (0 NULL, 1 a value), then 8 bytes: a fixed-width value itself, or the
// 64-bit xxh3 of a variable-width value's bytes or text. Every value takes
// the same room, so no two rows' bytes run into each other's: ("ab", "c")
// and ("a", "bc") differ.
const cellBytes = 9

// rowHasher hashes the rows of record batches; its buffers are reused
// from batch to batch.
type rowHasher struct {
	cells []byte // the batch's rows, cellBytes per column
	dict  []byte // a dictionary's entries, cellBytes each
}

// appendHashes appends the hash of each row of b to dst. Two rows hash
// alike when their values are equal column by column, however the columns
// are encoded: a dictionary's entry as the plain value, a float NaN as any
// other NaN. The caller compares the columns' names and types apart.
func (h *rowHasher) appendHashes(dst []rowHash, b arrow.RecordBatch) []rowHash {
	n, w := int(b.NumRows()), int(b.NumCols())*cellBytes
	if cap(h.cells) < n*w {
		h.cells = make([]byte, n*w)
	}
	cells := h.cells[:n*w]
	for c, col := range b.Columns() {
		h.column(cells, w, c*cellBytes, col)
	}
	for i := range n {
		dst = append(dst, rowHash(xxh3.Hash(cells[i*w:(i+1)*w])))
	}
	return dst
}

// column writes each value of a into cells: row i's at i*stride+off.
func (h *rowHasher) column(cells []byte, stride, off int, a arrow.Array) {
	switch a := a.(type) {
	case *array.Dictionary:
		h.dictionary(cells, stride, off, a)
		return
	case *array.String:
		data, offs := a.ValueBytes(), a.ValueOffsets()
		for i := range a.Len() {
			putCell(cells[i*stride+off:], xxh3.Hash(data[offs[i]-offs[0]:offs[i+1]-offs[0]]))
		}
	case *array.LargeString:
		for i := range a.Len() {
			if a.IsValid(i) {
				putCell(cells[i*stride+off:], xxh3.HashString(a.Value(i)))
			}
		}
	case *array.Binary:
		for i := range a.Len() {
			if a.IsValid(i) {
				putCell(cells[i*stride+off:], xxh3.Hash(a.Value(i)))
			}
		}
	case *array.Float64:
		for i, v := range a.Float64Values() {
			putCell(cells[i*stride+off:], canonicalFloat(v))
		}
	case *array.Float32:
		for i, v := range a.Float32Values() {
			putCell(cells[i*stride+off:], canonicalFloat(float64(v)))
		}
	default:
		if !fixedWidth(cells, stride, off, a) {
			// a type of no fast path: its text form
			for i := range a.Len() {
				if a.IsValid(i) {
					putCell(cells[i*stride+off:], xxh3.HashString(a.ValueStr(i)))
				}
			}
		}
	}
	if a.NullN() == 0 {
		return
	}
	for i := range a.Len() {
		if a.IsNull(i) {
			clear(cells[i*stride+off : i*stride+off+cellBytes])
		}
	}
}

// dictionary writes each row's entry of a: the entries are hashed once,
// then copied.
func (h *rowHasher) dictionary(cells []byte, stride, off int, a *array.Dictionary) {
	d := a.Dictionary()
	if cap(h.dict) < d.Len()*cellBytes {
		h.dict = make([]byte, d.Len()*cellBytes)
	}
	ent := h.dict[:d.Len()*cellBytes]
	h.column(ent, cellBytes, 0, d) // Arrow's dictionary values are no dictionary
	index := a.GetValueIndex
	if ix, ok := a.Indices().(*array.Int32); ok { // pqarrow's
		vs := ix.Int32Values()
		index = func(i int) int { return int(vs[i]) }
	}
	for i := range a.Len() {
		cell := cells[i*stride+off : i*stride+off+cellBytes]
		if a.IsValid(i) {
			e := index(i)
			copy(cell, ent[e*cellBytes:(e+1)*cellBytes])
		} else {
			clear(cell)
		}
	}
}

// fixedWidth writes a's values when its type has a fixed-width fast path,
// and reports whether it has.
func fixedWidth(cells []byte, stride, off int, a arrow.Array) bool {
	put := func(n int, v func(i int) uint64) {
		for i := range n {
			putCell(cells[i*stride+off:], v(i))
		}
	}
	switch a := a.(type) {
	case *array.Int64:
		put(a.Len(), func(i int) uint64 { return uint64(a.Value(i)) })
	case *array.Int32:
		put(a.Len(), func(i int) uint64 { return uint64(a.Value(i)) })
	case *array.Int16:
		put(a.Len(), func(i int) uint64 { return uint64(a.Value(i)) })
	case *array.Int8:
		put(a.Len(), func(i int) uint64 { return uint64(a.Value(i)) })
	case *array.Uint64:
		put(a.Len(), func(i int) uint64 { return a.Value(i) })
	case *array.Uint32:
		put(a.Len(), func(i int) uint64 { return uint64(a.Value(i)) })
	case *array.Uint16:
		put(a.Len(), func(i int) uint64 { return uint64(a.Value(i)) })
	case *array.Uint8:
		put(a.Len(), func(i int) uint64 { return uint64(a.Value(i)) })
	case *array.Timestamp:
		put(a.Len(), func(i int) uint64 { return uint64(a.Value(i)) })
	case *array.Date32:
		put(a.Len(), func(i int) uint64 { return uint64(a.Value(i)) })
	case *array.Date64:
		put(a.Len(), func(i int) uint64 { return uint64(a.Value(i)) })
	case *array.Time32:
		put(a.Len(), func(i int) uint64 { return uint64(a.Value(i)) })
	case *array.Time64:
		put(a.Len(), func(i int) uint64 { return uint64(a.Value(i)) })
	case *array.Duration:
		put(a.Len(), func(i int) uint64 { return uint64(a.Value(i)) })
	case *array.Boolean:
		put(a.Len(), func(i int) uint64 {
			if a.Value(i) {
				return 1
			}
			return 0
		})
	default:
		return false
	}
	return true
}

// canonicalFloat is v's bits, every NaN as one.
func canonicalFloat(v float64) uint64 {
	if v != v {
		return 0x7ff8000000000001
	}
	return math.Float64bits(v)
}

// putCell writes a value's cell: the flag and its 8 bytes.
func putCell(cell []byte, v uint64) {
	cell[0] = 1
	binary.LittleEndian.PutUint64(cell[1:], v)
}
