package parquetio

import (
	"bytes"
	"encoding/binary"
	"slices"

	"github.com/apache/arrow-go/v18/arrow/bitutil"
)

// This file holds the FastPartWriter's value loops. Each step appends values
// of slots [off, off+n) to the current page until the page is full (or, in
// dictionary mode, until the dictionary would outgrow its limit), and
// returns the slots consumed and the values (non-null slots) among them.

// idxCap is how many indices the current page may hold: the page is full
// when that many are buffered. It is recomputed when the dictionary grows.
func (c *fastColumn) idxCap() int {
	bw := dictBitWidth(c.dictLen())
	return max(len(c.idx)+1, (c.opt.pageSize*8+bw-1)/bw)
}

func (c *fastColumn) stepDict(in *fastInput, off, n int) (int, int, bool) {
	switch {
	case c.kind != kindBytes && c.width == 4:
		return stepFixedDict(c, in.u32, in, off, n)
	case c.kind != kindBytes:
		return stepFixedDict(c, in.u64, in, off, n)
	case in.dict:
		return c.stepDictIndices(in, off, n)
	}
	return c.stepBytesDict(in, off, n)
}

func (c *fastColumn) stepPlain(in *fastInput, off, n int) (int, int) {
	switch {
	case c.kind == kindBytes:
		return c.stepBytesPlain(in, off, n)
	case c.kind == kindBool:
		return c.stepBool(in, off, n)
	case c.width == 4:
		return stepFixedPlain(c, in.u32, in, off, n)
	}
	return stepFixedPlain(c, in.u64, in, off, n)
}

// hashBlock is how many values stepBytesDict hashes before resolving them.
const hashBlock = 32

// stepBytesDict hashes dense byte strings into the chunk dictionary. It works
// in blocks: first the hashes and the entries their first slots hold, then
// the comparisons, so that the CPU overlaps the cache misses of a block.
func (c *fastColumn) stepBytesDict(in *fastInput, off, n int) (int, int, bool) {
	d, v := c.bdict, in.bytes
	capIdx, limit, vals := c.idxCap(), c.opt.dictLimit, 0
	var hs [hashBlock]uint64
	var hint [hashBlock]int32
	end := off + n
	for blk := off; blk < end; blk += hashBlock {
		m := min(hashBlock, end-blk)
		d.hints(v, blk, m, &hs, &hint)
		for j := 0; j < m; j++ {
			i := blk + j
			if in.hasNulls && !bitSet(in.valid, in.voff+i) {
				continue
			}
			b := v.data[v.offs[i]:v.offs[i+1]]
			id := hint[j]
			if id < 0 || string(d.value(uint32(id))) != string(b) {
				var slot int
				if id, slot = d.probe(b, hs[j]); id < 0 {
					if len(d.plain)+4+len(b) > limit || 4+len(b) > c.opt.pageSize {
						return i - off, vals, true
					}
					id = d.insert(b, slot, hs[j])
					capIdx = c.idxCap()
				}
			}
			c.idx = append(c.idx, uint32(id))
			if vals++; len(c.idx) >= capIdx {
				return i + 1 - off, vals, false
			}
		}
	}
	return n, vals, false
}

// stepDictIndices translates the indices of an Arrow dictionary array into
// chunk dictionary indices, hashing each input entry at most once a chunk.
func (c *fastColumn) stepDictIndices(in *fastInput, off, n int) (int, int, bool) {
	d, remap := c.bdict, c.remap
	capIdx, limit, vals := c.idxCap(), c.opt.dictLimit, 0
	for i := off; i < off+n; i++ {
		if in.hasNulls && !bitSet(in.valid, in.voff+i) {
			continue
		}
		k := in.idx[i]
		id := remap[k]
		if id < 0 {
			b := in.dview.value(int(k))
			var slot int
			var h uint64
			if id, slot, h = d.lookup(b); id < 0 {
				if len(d.plain)+4+len(b) > limit || 4+len(b) > c.opt.pageSize {
					return i - off, vals, true
				}
				id = d.insert(b, slot, h)
				capIdx = c.idxCap()
			}
			remap[k] = id
		}
		c.idx = append(c.idx, uint32(id))
		if vals++; len(c.idx) >= capIdx {
			return i + 1 - off, vals, false
		}
	}
	return n, vals, false
}

func stepFixedDict[U uint32 | uint64](c *fastColumn, src []U, in *fastInput, off, n int) (int, int, bool) {
	d := c.fdict
	capIdx, maxEntries, vals := c.idxCap(), c.opt.dictLimit/c.width, 0
	var lastKey uint64
	lastID := int32(-1)
	for i := off; i < off+n; i++ {
		if in.hasNulls && !bitSet(in.valid, in.voff+i) {
			continue
		}
		key := uint64(src[i])
		id := lastID
		if key != lastKey || id < 0 {
			var slot int
			if id, slot = d.lookup(key); id < 0 {
				if len(d.vals)+1 > maxEntries {
					return i - off, vals, true
				}
				id = d.insert(key, slot)
				capIdx = c.idxCap()
			}
			lastKey, lastID = key, id
		}
		c.idx = append(c.idx, uint32(id))
		if vals++; len(c.idx) >= capIdx {
			return i + 1 - off, vals, false
		}
	}
	return n, vals, false
}

// stepBytesPlain writes byte strings, dense or through a dictionary array,
// as PLAIN values.
func (c *fastColumn) stepBytesPlain(in *fastInput, off, n int) (int, int) {
	room, vals := c.opt.pageSize-len(c.plain), 0
	var mn, mx []byte
	end := off + n
	i := off
	for ; i < end; i++ {
		if in.hasNulls && !bitSet(in.valid, in.voff+i) {
			continue
		}
		var b []byte
		if in.dict {
			b = in.dview.value(int(in.idx[i]))
		} else {
			b = in.bytes.data[in.bytes.offs[i]:in.bytes.offs[i+1]]
		}
		if 4+len(b) > c.opt.pageSize {
			if len(c.plain) > 0 {
				c.cutBefore = true // a value larger than a page is a page of its own
				break
			}
			// room for the levels cutPage puts in front (see prependTo)
			c.plain = slices.Grow(c.plain, 4+len(b)+64)
		}
		c.plain = binary.LittleEndian.AppendUint32(c.plain, uint32(len(b)))
		c.plain = append(c.plain, b...)
		switch {
		case vals == 0:
			mn, mx = b, b
		case bytes.Compare(b, mx) > 0:
			mx = b
		case bytes.Compare(b, mn) < 0:
			mn = b
		}
		vals++
		if room -= 4 + len(b); room <= 0 {
			i++
			break
		}
	}
	if vals > 0 {
		c.stats.addBytes(mn, mx, c.opt.statLimit)
	}
	return i - off, vals
}

func stepFixedPlain[U uint32 | uint64](c *fastColumn, src []U, in *fastInput, off, n int) (int, int) {
	w := c.width
	room := max(1, (c.opt.pageSize-len(c.plain)+w-1)/w)
	start := len(c.plain)
	if !in.hasNulls {
		k := min(n, room)
		c.plain = append(c.plain, asBytes(src[off:off+k])...)
		c.statsPlain(c.plain[start:])
		return k, k
	}
	k := min(n, room)
	c.plain = slices.Grow(c.plain, k*w)[:start+k*w]
	dst := castSlice[U](c.plain[start:])
	vals, i := 0, off
	for end := off + n; i < end && vals < k; i++ {
		if bitSet(in.valid, in.voff+i) {
			dst[vals] = src[i]
			vals++
		}
	}
	c.plain = c.plain[:start+vals*w]
	c.statsPlain(c.plain[start:])
	return i - off, vals
}

func (c *fastColumn) stepBool(in *fastInput, off, n int) (int, int) {
	room := max(1, c.opt.pageSize*8-c.bools.n)
	if !in.hasNulls {
		k := min(n, room)
		c.bools.appendBits(in.bits, in.boff+off, k)
		ones := bitutil.CountSetBits(in.bits, in.boff+off, k)
		c.stats.addBools(ones > 0, ones < k)
		return k, k
	}
	vals, ones, i := 0, 0, off
	for end := off + n; i < end && vals < room; i++ {
		if bitSet(in.valid, in.voff+i) {
			v := bitSet(in.bits, in.boff+i)
			c.bools.appendBit(v)
			if v {
				ones++
			}
			vals++
		}
	}
	if vals > 0 {
		c.stats.addBools(ones > 0, ones < vals)
	}
	return i - off, vals
}

// maxFallbackPage bounds the PLAIN page fallback re-encodes a dictionary
// page's values into. Past it (long values that repeat: a page of indices
// can reference one entry millions of times), the page is cut as it is,
// dictionary-encoded, and the chunk keeps its dictionary. Ordinary
// fallbacks re-encode a few MiB.
const maxFallbackPage = 16 << 20

// fallback switches the chunk to PLAIN encoding when its dictionary would
// outgrow DictionaryPageLimit, or a value is larger than a page (such a
// value never enters the dictionary): the current page's values are
// re-encoded as PLAIN and, when no dictionary-encoded page was cut yet, the
// dictionary is dropped (as arrow's writer does).
func (c *fastColumn) fallback() {
	if c.kind == kindBytes && c.fallbackSize() > maxFallbackPage {
		// cut dictionary-encoded once the step's levels are in (see
		// write); the chunk keeps its dictionary
		c.cutBefore, c.plainNext = true, true
		return
	}
	c.plain = c.plain[:0]
	if c.kind == kindBytes {
		var mn, mx []byte
		for k, id := range c.idx {
			b := c.bdict.value(id)
			c.plain = binary.LittleEndian.AppendUint32(c.plain, uint32(len(b)))
			c.plain = append(c.plain, b...)
			switch {
			case k == 0:
				mn, mx = b, b
			case bytes.Compare(b, mx) > 0:
				mx = b
			case bytes.Compare(b, mn) < 0:
				mn = b
			}
		}
		if len(c.idx) > 0 {
			c.stats.addBytes(mn, mx, c.opt.statLimit)
		}
	} else {
		for _, id := range c.idx {
			v := c.fdict.vals[id]
			if c.width == 4 {
				c.plain = binary.LittleEndian.AppendUint32(c.plain, uint32(v))
			} else {
				c.plain = binary.LittleEndian.AppendUint64(c.plain, v)
			}
		}
		c.statsPlain(c.plain)
	}
	c.idx = c.idx[:0]
	c.dictMode = false
	if c.dataPages[pagesDict] == 0 {
		c.resetDict()
	}
}

func (c *fastColumn) resetDict() {
	if c.bdict != nil {
		c.bdict.reset()
	}
	if c.fdict != nil {
		c.fdict.reset()
	}
}

// fallbackSize returns the size of the current page's byte strings as PLAIN
// values.
func (c *fastColumn) fallbackSize() int {
	n := 0
	for _, id := range c.idx {
		n += 4 + len(c.bdict.value(id))
	}
	return n
}
