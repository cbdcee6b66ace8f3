package classes

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/deidproject/deid/rules"
	"github.com/zeebo/xxh3"
)

// Key identifies one equivalence class: a 128-bit hash of a row's
// quasi-identifier values. Two different tuples share a key with
// probability about n²/2¹²⁹ for n classes (below 10⁻²² for 10M classes),
// so counting keys counts classes; the hash has no seed, so every run,
// worker count and process (deid verify included) agrees on the classes.
type Key xxh3.Uint128

// Hasher hashes rows of quasi-identifier columns into class keys.
// The zero value is ready to use; it is not safe for concurrent use.
type Hasher struct {
	buf []byte
}

// Keys appends to dst the class key of each row of cols, which must all
// have the same length. Each value is tagged (appendValue), with NULL
// distinct from every value (the empty string included) and dictionary
// values as their dense equivalent: rows fall in one class exactly when
// every value is equal.
func (h *Hasher) Keys(dst []Key, cols []arrow.Array) []Key {
	if len(cols) == 0 {
		return dst
	}
	n := cols[0].Len()
	for i := 0; i < n; i++ {
		h.buf = h.buf[:0]
		for _, a := range cols {
			h.buf = appendValue(h.buf, a, i)
		}
		dst = append(dst, Key(xxh3.Hash128(h.buf)))
	}
	return dst
}

// appendValue appends row i of a, tagged and length-prefixed. Strings and
// binaries are their bytes, numbers and times their 8-byte value (no
// allocation per value); other types their text.
func appendValue(buf []byte, a arrow.Array, i int) []byte {
	if a.IsNull(i) {
		return append(buf, 0)
	}
	switch c := a.(type) {
	case *array.Dictionary:
		return appendValue(buf, c.Dictionary(), c.GetValueIndex(i))
	case *array.String:
		return appendBytes(buf, c.Value(i))
	case *array.LargeString:
		return appendBytes(buf, c.Value(i))
	case *array.Binary:
		return appendBytes(buf, c.Value(i))
	case *array.LargeBinary:
		return appendBytes(buf, c.Value(i))
	case *array.Int64:
		return appendFixed(buf, uint64(c.Value(i)))
	case *array.Int32:
		return appendFixed(buf, uint64(c.Value(i)))
	case *array.Int16:
		return appendFixed(buf, uint64(c.Value(i)))
	case *array.Int8:
		return appendFixed(buf, uint64(c.Value(i)))
	case *array.Uint64:
		return appendFixed(buf, c.Value(i))
	case *array.Uint32:
		return appendFixed(buf, uint64(c.Value(i)))
	case *array.Float64:
		return appendFixed(buf, math.Float64bits(c.Value(i)))
	case *array.Float32:
		return appendFixed(buf, math.Float64bits(float64(c.Value(i))))
	case *array.Timestamp:
		return appendFixed(buf, uint64(c.Value(i)))
	case *array.Date32:
		return appendFixed(buf, uint64(c.Value(i)))
	case *array.Date64:
		return appendFixed(buf, uint64(c.Value(i)))
	}
	return appendBytes(buf, a.ValueStr(i))
}

func appendBytes[T string | []byte](buf []byte, v T) []byte {
	buf = append(buf, 1)
	buf = binary.AppendUvarint(buf, uint64(len(v)))
	return append(buf, v...)
}

func appendFixed(buf []byte, v uint64) []byte {
	buf = append(buf, 2)
	return binary.LittleEndian.AppendUint64(buf, v)
}

// Counts counts the rows of each equivalence class of one dataset in
// one destination that enforces min_k. The first pass of a run adds every
// row group's counts to a tally (addition commutes, so the totals do not
// depend on the order tasks end in), which spills to the scratch directory
// past a bounded number of classes; finish then keeps only what the second
// pass needs, the fingerprints of the classes smaller than minK, which the
// second reads without locking to drop their rows.
type Counts struct {
	Dst, Dataset string
	MinK         int
	// qi are the quasi-identifier (output) column names, in policy order
	QI []string

	mu sync.Mutex
	// tally holds the counts during the first pass, until finish
	Tally *Tally

	// set by finish
	below                 *smallClasses
	Classes, BelowClasses int64
	BelowRows             int64
	Spills                int
}

// NewCounts counts the classes of binding b in destination dst; the
// run gives it its tally when the first pass starts (the scratch directory
// is made after the inputs are listed).
func NewCounts(dst string, b *rules.Binding) *Counts {
	return &Counts{Dst: dst, Dataset: b.Dataset.Name, MinK: b.MinK, QI: b.QuasiIdentifiers}
}

// Merge adds one task's counts.
func (c *Counts) Merge(local map[Key]uint32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.Tally.AddAll(local); err != nil {
		return fmt.Errorf("destination %q, dataset %q: count classes: %w", c.Dst, c.Dataset, err)
	}
	return nil
}

// Finish ends the first pass: it reads the tally in key order, adds to each
// count what more returns for it (the other shards' rows of the class; nil
// adds nothing), records the classes below minK and closes the tally.
func (c *Counts) Finish(more func(k Key) (uint32, error)) error {
	below := &smallClasses{}
	var classes, belowClasses, belowRows int64
	err := c.Tally.Each(func(k Key, n uint32) error {
		if more != nil {
			m, err := more(k)
			if err != nil {
				return err
			}
			n = SatAdd(n, m)
		}
		classes++
		if n < uint32(c.MinK) {
			below.add(k)
			belowClasses++
			belowRows += int64(n)
		}
		return nil
	})
	if cerr := c.Tally.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("destination %q, dataset %q: count classes: %w", c.Dst, c.Dataset, err)
	}
	c.below, c.Classes, c.BelowClasses, c.BelowRows = below, classes, belowClasses, belowRows
	c.Spills = c.Tally.Spills
	return nil
}

// Small reports whether the class of key k has fewer than minK rows. Only
// after Finish.
func (c *Counts) Small(k Key) bool {
	return c.below.contains(k)
}

// SmallRows returns the number of rows in classes below minK, and the
// number of such classes. Only after Finish.
func (c *Counts) SmallRows() (rows, classes int64) {
	return c.BelowRows, c.BelowClasses
}

// smallClasses is the sorted, distinct 64-bit fingerprints (the high half
// of the key) of the classes below min_k: 8 bytes a small class, whatever
// the number of large ones. They are kept in chunks of smallChunk, so
// growing never copies them (no transient double). A large class whose
// fingerprint equals a small one's is taken for small, so its rows are
// dropped too: that fails closed (fewer rows published, never a small class
// kept), with probability about small × large / 2⁶⁴ in a run (below 10⁻⁵
// for 10M classes of each).
type smallClasses struct {
	chunks [][]uint64
}

const smallChunk = 1 << 16

// add appends the fingerprint of k; keys come in ascending order.
func (s *smallClasses) add(k Key) {
	n := len(s.chunks)
	if n > 0 {
		last := s.chunks[n-1]
		if last[len(last)-1] == k.Hi {
			return
		}
		if len(last) < cap(last) {
			s.chunks[n-1] = append(last, k.Hi)
			return
		}
	}
	s.chunks = append(s.chunks, append(make([]uint64, 0, smallChunk), k.Hi))
}

// contains reports whether k's fingerprint is a small class's.
func (s *smallClasses) contains(k Key) bool {
	// the last chunk whose first fingerprint is at most k's
	i := sort.Search(len(s.chunks), func(i int) bool { return s.chunks[i][0] > k.Hi }) - 1
	if i < 0 {
		return false
	}
	_, ok := slices.BinarySearch(s.chunks[i], k.Hi)
	return ok
}
