package verify

import (
	"cmp"
	"context"
	"math/bits"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/deidproject/deid/pipeline/parquetio"
	"github.com/zeebo/xxh3"
)

// This file holds the identifier filter: a blocked Bloom filter over the
// sources' identifier values, the lengths they have, and the exact set of
// their hashes, built from the sources' distinct values.
//
// The filter is blocked: a value's probes all fall in one 512-bit block
// (one cache line), so a lookup costs one memory access where seven
// scattered probes cost seven. Beside it the set records the lengths of the
// long values: an output word of a length no source value has cannot be one
// of them, and is not hashed at all (exact, so no hit is lost).

// maxLengthTracked is the longest length the set records one by one: a
// word longer than that is looked up whenever any source value is.
const maxLengthTracked = 256

// bloomHashes is the number of bits a value sets in its block.
const bloomHashes = 7

// bitsPerValue sizes the filter: about 1 % false positives.
const bitsPerValue = 10

// The filter is sized by the sources' distinct values, which are far fewer
// than their rows (a user's id is on each of their events): a small filter
// stays in the processor's caches. The distinct hashes are gathered first,
// each task's (up to localDistinct) then all of them (up to
// maxDistinctExact); past that the filter is sized by the rows and filled
// directly.
const localDistinct = 1 << 18

var maxDistinctExact = 1 << 21 // a variable for tests

// filterBuild gathers the distinct hashes of the sources' values, then
// fills the filter sized by their number.
type filterBuild struct {
	ctx    context.Context
	ids    *identifierSet
	mu     sync.Mutex
	set    *hashSet    // the distinct hashes, until direct
	direct atomic.Bool // the filter is sized by rows and filled as values come
	err    error       // counting the rows failed
}

// flush moves a task's distinct hashes into the set, or into the filter
// once it is filled directly, and empties local.
func (fb *filterBuild) flush(local *hashSet) {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	if fb.direct.Load() {
		local.each(func(h xxh3.Uint128) { fb.ids.add(h.Lo) })
		local.reset()
		return
	}
	local.each(fb.set.add)
	local.reset()
	if fb.set.len() > maxDistinctExact && fb.err == nil {
		// too many to gather: size the filter by every source file's
		// rows of identifier columns (their footers, read once)
		var rows int64
		fb.err = fb.ids.eachFile(fb.ctx, func(f *parquetio.File, cols []int, _ []string) error {
			rows += f.NumRows() * int64(len(cols))
			return nil
		})
		if fb.err == nil {
			fb.fill(max(rows, int64(fb.set.len())))
			fb.direct.Store(true)
		}
	}
}

// finish fills the filter from the set, and keeps the set sorted as the
// exact hashes, unless the filter was filled directly.
func (fb *filterBuild) finish() {
	if fb.direct.Load() {
		return
	}
	exact := make([]xxh3.Uint128, 0, fb.set.len())
	fb.set.each(func(h xxh3.Uint128) { exact = append(exact, h) })
	slices.SortFunc(exact, compareHashes)
	fb.fill(int64(fb.set.len()))
	fb.ids.exact = exact
}

func compareHashes(a, b xxh3.Uint128) int {
	return cmp.Or(cmp.Compare(a.Hi, b.Hi), cmp.Compare(a.Lo, b.Lo))
}

// fill sizes the filter for n values and adds the set's.
func (fb *filterBuild) fill(n int64) {
	fb.ids.blocks = make([][8]uint64, max((n*bitsPerValue+511)/512, 2))
	fb.set.each(func(h xxh3.Uint128) { fb.ids.add(h.Lo) })
	fb.set = nil
}

// hash is the keyed hash of v: the filter holds its low half, the exact
// hashes all of it.
func (ids *identifierSet) hash(v []byte) xxh3.Uint128 { return xxh3.Hash128Seed(v, ids.seed) }

// probe returns hash h's block and the mask of the bits it sets there, by
// word: the block from h's high bits, the bits from a remix of all of them.
func (ids *identifierSet) probe(h uint64) (*[8]uint64, [8]uint64) {
	blk, _ := bits.Mul64(h, uint64(len(ids.blocks)))
	m := bits.RotateLeft64(h, 29) * 0x9e3779b97f4a7c15
	var mask [8]uint64
	for i := range bloomHashes {
		p := (m >> (9 * i)) & 511
		mask[p>>6] |= 1 << (p & 63)
	}
	return &ids.blocks[blk], mask
}

// add puts hash h into the filter; it may be called from several
// goroutines.
func (ids *identifierSet) add(h uint64) {
	b, mask := ids.probe(h)
	for w, m := range mask {
		if m != 0 && atomic.LoadUint64(&b[w])&m != m {
			atomic.OrUint64(&b[w], m)
		}
	}
}

// has reports whether v may be a source identifier value (v hashed as it
// is: a long value, or a shortKey).
func (ids *identifierSet) has(v []byte) bool {
	if len(ids.blocks) == 0 {
		return false
	}
	h := ids.hash(v)
	b, mask := ids.probe(h.Lo)
	for w, m := range mask {
		if b[w]&m != m {
			return false
		}
	}
	if ids.exact != nil {
		_, found := slices.BinarySearchFunc(ids.exact, h, compareHashes)
		return found
	}
	return true
}

// mayHaveLength reports whether some long source value is n bytes long.
func (ids *identifierSet) mayHaveLength(n int) bool {
	return ids.lengths[min(n, maxLengthTracked)]
}

// hashSet is a set of 128-bit hashes, open-addressed: the hashes are
// uniform already, so a slot is found from a hash's low bits with no
// hashing of its own, and a probe compares 16 bytes in place (a Go map
// hashed each key again and cost a quarter of verify's time).
type hashSet struct {
	slots   []xxh3.Uint128 // a power of two of them; the zero hash marks a free one
	n       int
	hasZero bool // the zero hash itself is in the set
}

// add puts h into the set.
func (s *hashSet) add(h xxh3.Uint128) {
	if h == (xxh3.Uint128{}) {
		if !s.hasZero {
			s.hasZero = true
			s.n++
		}
		return
	}
	if 2*(s.n+1) > len(s.slots) {
		s.grow()
	}
	mask := len(s.slots) - 1
	for i := int(h.Lo) & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case h:
			return
		case xxh3.Uint128{}:
			s.slots[i] = h
			s.n++
			return
		}
	}
}

// grow doubles the slots (1,024 at first) and puts the hashes back.
func (s *hashSet) grow() {
	old := s.slots
	s.slots = make([]xxh3.Uint128, max(2*len(old), 1024))
	s.n = 0
	if s.hasZero {
		s.n = 1
	}
	mask := len(s.slots) - 1
	for _, h := range old {
		if h == (xxh3.Uint128{}) {
			continue
		}
		i := int(h.Lo) & mask
		for s.slots[i] != (xxh3.Uint128{}) {
			i = (i + 1) & mask
		}
		s.slots[i] = h
		s.n++
	}
}

// len is the number of hashes in the set.
func (s *hashSet) len() int { return s.n }

// each calls fn with every hash of the set, in no order.
func (s *hashSet) each(fn func(xxh3.Uint128)) {
	if s.hasZero {
		fn(xxh3.Uint128{})
	}
	for _, h := range s.slots {
		if h != (xxh3.Uint128{}) {
			fn(h)
		}
	}
}

// reset empties the set, keeping its slots.
func (s *hashSet) reset() {
	clear(s.slots)
	s.n, s.hasZero = 0, false
}
